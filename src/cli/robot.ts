// ferry robot create|list|revoke: robot accounts in the region state.
import { ROBOT_NAME } from '../auth/robot-name.ts'
import { parseDuration } from '../common/units.ts'
import { loadRegion } from '../config/load.ts'
import { createLogger } from '../observe/logger.ts'
import { defineCommand, requireConfig, UsageError } from './command.ts'

const usage = `usage:
  ferry robot create NAME --config FILE --scope PATTERN=ROLE [--scope ...] [--expires 30d]
  ferry robot list --config FILE
  ferry robot revoke NAME --config FILE

Robot accounts for automation: each logs in as robot$NAME with a secret shown
once, and may do what its scopes say (ROLE: reader, writer, admin).

  --config FILE       the region file (robots live in its region state)
  --scope P=ROLE      repositories matching P (comma-separated patterns) get ROLE
  --expires DURATION  the robot stops working after this long (12h, 30d)`


export const robotCommand = defineCommand({
  name: 'robot',
  summary: 'create, list and revoke robot accounts',
  usage,
  options: { config: { type: 'string', short: 'c' }, scope: { type: 'string', multiple: true }, expires: { type: 'string' } },
  async run (values, positionals) {
    const [verb, name, ...rest] = positionals
    if (verb !== 'create' && verb !== 'list' && verb !== 'revoke') throw new UsageError(`ferry robot: create, list or revoke, not "${verb ?? ''}"`, usage)
    if (rest.length > 0) throw new UsageError(`ferry robot: unexpected "${rest[0]}"`, usage)
    if (verb !== 'create' && (values.scope !== undefined || values.expires !== undefined)) throw new UsageError(`ferry robot ${verb}: --scope and --expires are for create`, usage)
    const config = await loadRegion(requireConfig(values.config, 'robot', usage))
    const { openState } = await import('../state/open-state.ts')
    const { createRobot, revokeRobot } = await import('../auth/robots.ts')
    const opened = await openState(config, createLogger('silent'))
    try {
      if (verb === 'list') {
        if (name !== undefined) throw new UsageError('ferry robot list takes no NAME', usage)
        for (const r of await opened.state.robots.list()) {
          console.log(JSON.stringify({ user: `robot$${r.name}`, scopes: r.scopes, createdAt: new Date(r.createdAt).toISOString(), expiresAt: r.expiresAt === undefined ? null : new Date(r.expiresAt).toISOString(), revoked: r.revokedAt !== undefined }))
        }
        return 0
      }
      if (name === undefined || !ROBOT_NAME.test(name)) throw new UsageError('ferry robot: a NAME of [a-z0-9._-] is required', usage)
      if (verb === 'revoke') {
        if (!await revokeRobot(opened.state, name)) { console.error(`ferry robot: no active robot ${name}`); return 1 }
        console.log(JSON.stringify({ user: `robot$${name}`, revoked: true }))
        return 0
      }
      const scopes: { repositories: string[], role: 'reader' | 'writer' | 'admin' }[] = []
      for (const sc of values.scope ?? []) {
        const m = /^(.+)=(reader|writer|admin)$/.exec(sc)
        if (m === null) throw new UsageError(`ferry robot: --scope takes PATTERN=ROLE (reader, writer, admin), not "${sc}"`, usage)
        scopes.push({ repositories: m[1]!.split(','), role: m[2] as 'reader' | 'writer' | 'admin' })
      }
      if (scopes.length === 0) throw new UsageError('ferry robot create: at least one --scope PATTERN=ROLE', usage)
      const ttl = values.expires === undefined ? undefined : parseDuration(values.expires)
      if (values.expires !== undefined && (ttl === undefined || ttl === 0)) throw new UsageError('ferry robot: --expires takes a duration such as 12h or 30d', usage)
      const created = await createRobot(opened.state, name, scopes, ttl === undefined ? undefined : Date.now() + ttl)
      // the secret is shown once, here, and kept nowhere but as a hash
      console.log(JSON.stringify(created))
      return 0
    } finally {
      await opened.close()
    }
  },
})
