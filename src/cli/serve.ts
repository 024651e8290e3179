// ferry serve: one edge proxy (or a primary and its workers) until SIGINT or SIGTERM.
import cluster from 'node:cluster'
import { runPrimary } from '../cluster/primary.ts'
import { EMBEDDED_DEFAULT, loadRegion } from '../config/load.ts'
import { createLogger, type Logger } from '../observe/logger.ts'
import { serve } from '../serve.ts'
import { defineCommand, overridesOf, REGION_FLAGS, REGION_FLAGS_USAGE } from './command.ts'

const usage = `usage: ferry serve [--config FILE] [--listen HOST:PORT] [--data DIR] [--upstream URL] [--workers N]

Serve pulls until SIGINT or SIGTERM.

${REGION_FLAGS_USAGE}`

/** Run until SIGINT or SIGTERM, then close. */
export async function untilSignal (log: Logger, close: () => Promise<void>): Promise<void> {
  await new Promise<void>(resolve => {
    const stop = (signal: string): void => {
      log.info({ signal }, 'shutting down')
      close().then(resolve, resolve)
    }
    process.once('SIGINT', stop)
    process.once('SIGTERM', stop)
  })
}

/** A listen failure an operator can act on, in one line; undefined for anything else. */
export function listenFailure (err: unknown, address: string): string | undefined {
  const code = (err as { code?: string }).code
  if (code === 'EADDRINUSE') return `cannot listen on ${address}: the address is in use (another ferry, or another server)`
  if (code === 'EACCES') return `cannot listen on ${address}: permission denied (ports below 1024 need privileges)`
  if (code === 'EADDRNOTAVAIL') return `cannot listen on ${address}: no such address on this machine`
  return undefined
}

export const serveCommand = defineCommand({
  name: 'serve',
  summary: 'serve pulls (the default region file: regions/local.yaml)',
  usage,
  options: REGION_FLAGS,
  async run (values) {
    const config = await loadRegion(values.config ?? EMBEDDED_DEFAULT, overridesOf(values, usage, 'serve'))
    let log: Logger
    let close: () => Promise<void>
    try {
      if (config.workers > 1 && cluster.isPrimary) {
        log = createLogger(config.logLevel).child({ region: config.region, role: 'primary' })
        close = await runPrimary(config, log)
      } else {
        const running = await serve(config, cluster.isWorker ? 'worker' : 'single')
        log = running.log
        close = running.close
      }
    } catch (err) {
      const why = listenFailure(err, `${config.listen.host}:${config.listen.port}`)
      if (why === undefined) throw err
      console.error(`ferry serve: ${why}`)
      return 1
    }
    await untilSignal(log, close)
    // a worker's channel to the primary would keep it alive for ever
    if (cluster.isWorker) process.disconnect()
    return 0
  },
})
