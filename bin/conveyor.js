#!/usr/bin/env node
'use strict';
// Registers tsx so pipelines and modules written in TypeScript load as they are.
// Node flags cannot ride this first line portably (BusyBox's env has no -S): `npm start` names
// them, and `npx conveyor` takes them from NODE_OPTIONS (src/node-flags.ts, docs/operations.md).
require('tsx/cjs');
require('../src/cli/main.ts');
