/** `conveyor <command>`: the command-line entry. Every command is in `./commands/index.ts`. */
import { processIo } from './commands/args';
import { COMMANDS, mainHelp } from './commands/index';

async function main(argv: string[]): Promise<void> {
  const [name, ...rest] = argv;
  if (name === 'help' && rest[0] !== undefined && Object.hasOwn(COMMANDS, rest[0])) {
    processIo.out(COMMANDS[rest[0]]!.usage);
    return;
  }
  if (name === undefined || name === 'help' || name === '--help' || name === '-h') {
    processIo.out(mainHelp());
    return;
  }
  const command = Object.hasOwn(COMMANDS, name) ? COMMANDS[name] : undefined;
  if (!command) {
    processIo.err(`conveyor: unknown command "${name}"\n\n${mainHelp()}`);
    process.exitCode = 2;
    return;
  }
  const code = await command.run(rest, processIo);
  // A failed start may leave handles open (a database, a queue): end now. Output is written
  // synchronously to files and pipes, so nothing printed is lost.
  if (code !== 0) process.exit(code);
}

main(process.argv.slice(2)).catch((e: unknown) => {
  processIo.err(`conveyor: ${(e as Error).message}`);
  process.exit(1);
});
