// A region file from disk: YAML, then parse.ts.
import { readFile } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import { parseDocument } from 'yaml'
import { ConfigError, parseRegion, type Overrides } from './parse.ts'
import type { RegionConfig } from './region-config.ts'

/** regions/local.yaml, shipped with ferry: the embedded default. */
export const EMBEDDED_DEFAULT = fileURLToPath(new URL('../../regions/local.yaml', import.meta.url))

export async function loadRegion (file: string, overrides: Overrides = {}): Promise<RegionConfig> {
  let text: string
  try {
    text = await readFile(file, 'utf8')
  } catch (err) {
    throw new ConfigError(file, [{ field: '(file)', expected: 'a readable YAML file', got: (err as NodeJS.ErrnoException).code ?? String(err) }])
  }
  const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true })
  if (doc.errors.length > 0) {
    throw new ConfigError(file, doc.errors.map(e => ({ field: `(line ${e.linePos?.[0]?.line ?? '?'})`, expected: 'valid YAML', got: e.message.split('\n')[0] ?? e.code })))
  }
  const { config, problems } = parseRegion(doc.toJS(), file, overrides)
  if (config === undefined) throw new ConfigError(file, problems)
  return config
}
