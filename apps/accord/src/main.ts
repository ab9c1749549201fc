import { ErrorCode } from '@accord/protocol';
console.log('accord', ErrorCode.CLI_USAGE);
