/** The exit code a command's `run` returned, handed from the command to the binary's runner. */
export const exitState = { code: 0 }
