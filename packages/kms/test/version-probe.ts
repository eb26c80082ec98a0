// The version prov-kms prints without loading @prov/core (cold start); read from the source.
import { readFileSync } from 'node:fs'
import { join } from 'node:path'

export const KMS_VERSION_FOR_TEST = /KMS_VERSION = '([^']+)'/.exec(readFileSync(join(import.meta.dirname, '../src/cli.ts'), 'utf8'))?.[1]
