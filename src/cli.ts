#!/usr/bin/env -S node --max-semi-space-size=16
// ferry <command>: the operator's entry point.
import { parseArgs } from 'node:util'
import { loadRegion, EMBEDDED_DEFAULT } from './config/load.ts'
import { ConfigError } from './config/fields.ts'
import cluster from 'node:cluster'
import { runPrimary } from './cluster/primary.ts'
import { createLogger, type Logger } from './observe/logger.ts'
import { serve } from './serve.ts'

// fsync of committed blobs holds a threadpool thread for milliseconds; with
// libuv's default 4 threads, every other file operation queued behind them.
// Read at the pool's first use, which is after this line.
process.env.UV_THREADPOOL_SIZE ??= '16'

const USAGE = `ferry: pull-through cache and replicator for OCI registries

usage:
  ferry serve [--config FILE] [--listen HOST:PORT] [--data DIR] [--upstream URL] [--workers N]
  ferry check --config FILE
  ferry replicate --config FILE [--status | --dead-letters | --retry-dead]
  ferry audit --config FILE [--since 1h] [--repo PATTERN] [--user NAME]
  ferry robot create NAME --config FILE --scope PATTERN=ROLE [--scope ...] [--expires 30d]
  ferry robot list --config FILE
  ferry robot revoke NAME --config FILE
  ferry --help | --version

  --config FILE       region file (default: the embedded regions/local.yaml)
  --listen HOST:PORT  address to serve on (overrides "listen")
  --data DIR          data folder: blob cache and state (overrides "data")
  --upstream URL      one default upstream registry (replaces the file's default)
  --workers N         worker processes sharing the port (overrides "workers")

  replicate           follow the region's stream and push it to replication.peers
  --status            how far behind each peer is (one JSON line per peer), then exit
  --dead-letters      what peers refused after every attempt, then exit
  --retry-dead        try the dead letters once more, then exit (1 if any still fail)

  audit               print the audit log's lines (JSON), filtered
  --since DURATION    only the last 90s, 15m, 2h, 7d
  --repo PATTERN      only repositories matching (* within a segment, ** across)
  --user NAME         only this identity
`

/** Run until SIGINT or SIGTERM, then close. */
async function untilSignal (log: Logger, close: () => Promise<void>): Promise<void> {
  await new Promise<void>(resolve => {
    const stop = (signal: string): void => {
      log.info({ signal }, 'shutting down')
      close().then(resolve, resolve)
    }
    process.once('SIGINT', stop)
    process.once('SIGTERM', stop)
  })
}

async function main (argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      config: { type: 'string', short: 'c' },
      listen: { type: 'string' },
      data: { type: 'string' },
      upstream: { type: 'string' },
      workers: { type: 'string' },
      status: { type: 'boolean' },
      'dead-letters': { type: 'boolean' },
      'retry-dead': { type: 'boolean' },
      since: { type: 'string' },
      repo: { type: 'string' },
      user: { type: 'string' },
      scope: { type: 'string', multiple: true },
      expires: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
      version: { type: 'boolean' },
    },
  })
  const command = positionals[0]
  if (values.version) { console.log('ferry 0.1.0'); return 0 }
  if (values.help || command === undefined || command === 'help') { console.log(USAGE); return command === undefined && !values.help ? 2 : 0 }
  const file = values.config ?? EMBEDDED_DEFAULT
  const workers = values.workers === undefined ? undefined : Number(values.workers)
  if (workers !== undefined && !Number.isInteger(workers)) { console.error('ferry: --workers takes a whole number'); return 2 }
  const overrides = { listen: values.listen, data: values.data, upstream: values.upstream, workers }

  switch (command) {
    case 'check': {
      if (values.config === undefined) { console.error('ferry check: --config FILE is required'); return 2 }
      const config = await loadRegion(file, overrides)
      console.log(`${file}: ok (region ${config.region}, ${config.upstreams.length} upstream${config.upstreams.length === 1 ? '' : 's'})`)
      return 0
    }
    case 'serve': {
      const config = await loadRegion(file, overrides)
      let log: Logger
      let close: () => Promise<void>
      if (config.workers > 1 && cluster.isPrimary) {
        log = createLogger(config.logLevel).child({ region: config.region, role: 'primary' })
        close = await runPrimary(config, log)
      } else {
        const running = await serve(config, cluster.isWorker ? 'worker' : 'single')
        log = running.log
        close = running.close
      }
      await untilSignal(log, close)
      // a worker's channel to the primary would keep it alive for ever
      if (cluster.isWorker) process.disconnect()
      return 0
    }
    case 'replicate': {
      if (values.config === undefined) { console.error('ferry replicate: --config FILE is required'); return 2 }
      const config = await loadRegion(file, overrides)
      const log = createLogger(config.logLevel).child({ region: config.region, role: 'replicator' })
      const mode = values.status === true ? 'status' : values['dead-letters'] === true ? 'dead-letters' : values['retry-dead'] === true ? 'retry-dead' : 'run'
      const { replicate } = await import('./replicate/run.ts')
      const result = await replicate(config, mode, log, line => console.log(line))
      if (typeof result === 'number') return result
      await untilSignal(log, result)
      return 0
    }
    case 'robot': {
      if (values.config === undefined) { console.error('ferry robot: --config FILE is required'); return 2 }
      const config = await loadRegion(file, overrides)
      const log = createLogger('silent')
      const { openState } = await import('./store/open-state.ts')
      const { createRobot, revokeRobot } = await import('./auth/robots.ts')
      const { parseSince } = await import('./observe/audit-read.ts')
      const opened = await openState(config, log)
      try {
        const [, verb, name] = positionals
        if (verb === 'list') {
          for (const r of await opened.state.robots()) console.log(JSON.stringify({ user: `robot$${r.name}`, scopes: r.scopes, createdAt: new Date(r.createdAt).toISOString(), expiresAt: r.expiresAt === undefined ? null : new Date(r.expiresAt).toISOString(), revoked: r.revokedAt !== undefined }))
          return 0
        }
        if (name === undefined || !/^[a-z0-9][a-z0-9._-]{0,62}$/.test(name)) { console.error('ferry robot: a NAME of [a-z0-9._-] is required'); return 2 }
        if (verb === 'revoke') {
          if (!await revokeRobot(opened.state, name)) { console.error(`ferry robot: no active robot ${name}`); return 1 }
          console.log(JSON.stringify({ user: `robot$${name}`, revoked: true }))
          return 0
        }
        if (verb !== 'create') { console.error(`ferry robot: create, list or revoke, not "${verb ?? ''}"`); return 2 }
        const scopes: { repositories: string[], role: 'reader' | 'writer' | 'admin' }[] = []
        for (const sc of values.scope ?? []) {
          const m = /^(.+)=(reader|writer|admin)$/.exec(sc)
          if (m === null) { console.error(`ferry robot: --scope takes PATTERN=ROLE (reader, writer, admin), not "${sc}"`); return 2 }
          scopes.push({ repositories: m[1]!.split(','), role: m[2] as 'reader' | 'writer' | 'admin' })
        }
        if (scopes.length === 0) { console.error('ferry robot create: at least one --scope PATTERN=ROLE'); return 2 }
        const ttl = values.expires === undefined ? undefined : parseSince(values.expires)
        if (values.expires !== undefined && ttl === undefined) { console.error('ferry robot: --expires takes a duration such as 12h or 30d'); return 2 }
        const created = await createRobot(opened.state, name, scopes, ttl === undefined ? undefined : Date.now() + ttl)
        // the secret is shown once, here, and kept nowhere but as a hash
        console.log(JSON.stringify(created))
        return 0
      } finally {
        await opened.close()
      }
    }
    case 'audit': {
      if (values.config === undefined) { console.error('ferry audit: --config FILE is required'); return 2 }
      const config = await loadRegion(file, overrides)
      if (config.audit?.file === undefined) { console.error(`${file}: audit.file: expected a file to read (this region writes no audit file)`); return 1 }
      const { readAudit, parseSince } = await import('./observe/audit-read.ts')
      const sinceMs = values.since === undefined ? undefined : parseSince(values.since)
      if (values.since !== undefined && sinceMs === undefined) { console.error('ferry audit: --since takes a duration such as 90s, 15m, 2h, 7d'); return 2 }
      await readAudit(config.audit.file, { sinceMs, repository: values.repo, user: values.user }, line => console.log(line))
      return 0
    }
    default:
      console.error(`ferry: unknown command "${command}"\n\n${USAGE}`)
      return 2
  }
}

main(process.argv.slice(2)).then(code => { process.exitCode = code }, (err: unknown) => {
  if (err instanceof ConfigError) {
    console.error(err.message)
    process.exitCode = 1
  } else if ((err as { code?: string }).code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION' || (err as { code?: string }).code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE') {
    console.error(`ferry: ${(err as Error).message}\n\n${USAGE}`)
    process.exitCode = 2
  } else {
    console.error(err)
    process.exitCode = 1
  }
})
