/**
 * Text bound for a terminal, made harmless: control characters (C0 but newline and tab, DEL, C1)
 * and the Unicode direction overrides are written as `\u001b`-style escapes. Names, tags and
 * messages that came from an API, a registry or a remote command could otherwise move the cursor,
 * retitle the window, clear the screen or reorder what a person reads.
 */
const unprintable = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g
/** Colour sequences (SGR) prov's own log reporter writes; kept where `colours` is asked for. */
const colour = /\u001b\[[0-9;]*m/y

const escaped = (char: string) => `\\u${char.charCodeAt(0).toString(16).padStart(4, '0')}`

export function printable(text: string, options: { colours?: boolean; oneLine?: boolean } = {}): string {
  // A table cell or a one-line view: a newline in a name would start a line that is not a row.
  if (options.oneLine) text = text.replace(/\n/g, '\\n')
  if (!options.colours) return text.replace(unprintable, escaped)
  return text.replace(unprintable, (char, offset: number) => {
    colour.lastIndex = offset
    return char === '\u001b' && colour.test(text) ? char : escaped(char)
  })
}
