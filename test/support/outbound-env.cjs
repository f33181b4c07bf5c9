'use strict';
/**
 * Tests talk only to stand-ins on loopback, and by default the outbound rule refuses loopback
 * callback URLs (src/transports/outbound.ts). So the suite, and every process it spawns,
 * allows exactly loopback. Tests of the default rule pass their own `outboundAllow`.
 */
if (process.env.CONVEYOR_OUTBOUND_ALLOW === undefined) process.env.CONVEYOR_OUTBOUND_ALLOW = '127.0.0.0/8,::1/128';
