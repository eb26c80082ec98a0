/** State handed between the binary's runner and the command it runs. */
export const exitState = {
  /** The exit code the command's `run` returned. */
  code: 0,
  /** The full command line's command words (`prov-server delete`), for messages. */
  command: '',
}
