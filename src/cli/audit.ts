// ferry audit: the audit log read back, filtered.
import { parseDuration } from '../common/units.ts'
import { loadRegion } from '../config/load.ts'
import { defineCommand, requireConfig, UsageError } from './command.ts'

const usage = `usage: ferry audit --config FILE [--since DURATION] [--repo PATTERN] [--user NAME]

Print the audit log's lines (JSON), oldest first, filtered.

  --config FILE       the region file (its audit.file is read)
  --since DURATION    only the last 90s, 15m, 2h, 7d
  --repo PATTERN      only repositories matching (* within a segment, ** across)
  --user NAME         only this identity (what was tried, for failed logins)`

export const auditCommand = defineCommand({
  name: 'audit',
  summary: 'print the audit log, filtered by time, repository and identity',
  usage,
  options: { config: { type: 'string', short: 'c' }, since: { type: 'string' }, repo: { type: 'string' }, user: { type: 'string' } },
  async run (values) {
    const file = requireConfig(values.config, 'audit', usage)
    const config = await loadRegion(file)
    if (config.audit?.file === undefined) { console.error(`${file}: audit.file: expected a file to read (this region writes no audit file)`); return 1 }
    const sinceMs = values.since === undefined ? undefined : parseDuration(values.since)
    if (values.since !== undefined && sinceMs === undefined) throw new UsageError('ferry audit: --since takes a duration such as 90s, 15m, 2h, 7d', usage)
    const { readAudit } = await import('../observe/audit-read.ts')
    await readAudit(config.audit.file, { sinceMs, repository: values.repo, user: values.user }, line => console.log(line))
    return 0
  },
})
