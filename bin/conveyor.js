#!/usr/bin/env -S node --max-semi-space-size=32
'use strict';
// The first line gives node a young generation of 32 MB semi-spaces (src/node-flags.ts); run
// as `node bin/conveyor.js`, node does not read it: `npm start` names the flag itself.
// Registers tsx so pipelines and modules written in TypeScript load as they are.
require('tsx/cjs');
require('../src/cli/main.ts');
