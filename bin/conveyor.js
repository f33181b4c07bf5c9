#!/usr/bin/env node
'use strict';
// Registers tsx so pipelines and modules written in TypeScript load as they are.
require('tsx/cjs');
require('../src/cli/main.ts');
