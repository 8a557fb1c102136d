// The shell quoter lives in the exec layer (src/exec/quote.ts); this path stays for its importers.
export { shQuote, shJoin, shCommand, type ShellArg } from '../exec/quote.ts';
