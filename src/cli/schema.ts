// ferry schema: the region file's JSON Schema, for editors and CI checks.
import { regionJsonSchema } from '../config/schema.ts'
import { defineCommand, UsageError } from './command.ts'

export const schemaCommand = defineCommand({
  name: 'schema',
  summary: 'print the region file\'s JSON Schema',
  usage: `usage: ferry schema

Print the JSON Schema (draft-07) of a region file. Editors with
yaml-language-server use it from a first line such as
  # yaml-language-server: $schema=./ferry-region.schema.json`,
  options: {},
  async run (_values, positionals) {
    if (positionals.length > 0) throw new UsageError(`ferry schema takes no arguments`, this.usage)
    console.log(JSON.stringify(regionJsonSchema(), null, 2))
    return 0
  },
})
