// ferry replicate: the replicator, and the operator's views of it.
import { loadRegion } from '../config/load.ts'
import { createLogger } from '../observe/logger.ts'
import { StateError } from '../state/errors.ts'
import { defineCommand, requireConfig, UsageError } from './command.ts'
import { listenFailure, untilSignal } from './serve.ts'

const usage = `usage: ferry replicate --config FILE [--status | --dead-letters | --retry-dead]

Follow the region's stream and push what the rules select to replication.peers.

  --config FILE       the region file
  --status            how far behind each peer is (one JSON line per peer), then exit
  --dead-letters      what peers refused after every attempt, then exit
  --retry-dead        try the dead letters once more, then exit (1 if any still fail)`

export const replicateCommand = defineCommand({
  name: 'replicate',
  summary: 'push what this region holds to its peer regions',
  usage,
  options: { config: { type: 'string', short: 'c' }, status: { type: 'boolean' }, 'dead-letters': { type: 'boolean' }, 'retry-dead': { type: 'boolean' } },
  async run (values) {
    const config = await loadRegion(requireConfig(values.config, 'replicate', usage))
    const modes = (['status', 'dead-letters', 'retry-dead'] as const).filter(m => values[m] === true)
    if (modes.length > 1) throw new UsageError('ferry replicate: at most one of --status, --dead-letters, --retry-dead', usage)
    const log = createLogger(config.logLevel).child({ region: config.region, role: 'replicator' })
    const { replicate } = await import('../replicate/run.ts')
    let result
    try {
      result = await replicate(config, modes[0] ?? 'run', log, line => console.log(line))
    } catch (err) {
      if (err instanceof StateError) {
        console.error(`ferry replicate: ${err.message}`)
        return 1
      }
      const listen = config.replication.metricsListen
      const why = listen === undefined ? undefined : listenFailure(err, `${listen.host}:${listen.port}`)
      if (why === undefined) throw err
      console.error(`ferry replicate: replication.metricsListen: ${why}`)
      return 1
    }
    if (typeof result === 'number') return result
    await untilSignal(log, result)
    return 0
  },
})
