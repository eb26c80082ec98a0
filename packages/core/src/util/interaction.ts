/**
 * Whether a person may be involved in this run. Mode `ci` makes every command unattended: it
 * never asks (a question becomes a refusal naming the flag that answers it), and stderr gets no
 * colours and no animated progress even on a terminal (CI logs keep escape codes as garbage).
 * Set once per command from the configuration; a command reads it, never sets it.
 */
let unattended = false

export function setUnattended(value: boolean): void {
  unattended = value
}

/** True in mode `ci`: nobody is there to answer or to watch. */
export function isUnattended(): boolean {
  return unattended
}

/** Colours on `stream`: a terminal that wants them (no NO_COLOR, not dumb) in an attended run. */
export function colourAllowed(stream: { isTTY?: boolean } = process.stderr): boolean {
  return !unattended && Boolean(stream.isTTY) && !process.env.NO_COLOR && process.env.TERM !== 'dumb'
}

/** Animated progress (spinners, redrawn lines) on stderr: a terminal there, in an attended run. */
export function animationAllowed(): boolean {
  return !unattended && Boolean(process.stderr.isTTY)
}
