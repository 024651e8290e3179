// npm run docs: write what is generated from the region file's schema: the
// README's configuration reference and regions/ferry-region.schema.json
// (which the example region files name for yaml-language-server).
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { withTable } from '../src/config/reference.ts'
import { regionJsonSchema } from '../src/config/schema.ts'

const root = join(import.meta.dirname, '..')
const readme = join(root, 'README.md')
writeFileSync(readme, withTable(readFileSync(readme, 'utf8')))
writeFileSync(join(root, 'regions', 'ferry-region.schema.json'), JSON.stringify(regionJsonSchema(), null, 2) + '\n')
console.log('README.md and regions/ferry-region.schema.json written')
