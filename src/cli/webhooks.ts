// ferry webhooks --dead-letters: the events no receiver took, for an operator.
import { loadRegion } from '../config/load.ts'
import { createLogger } from '../observe/logger.ts'
import { defineCommand, requireConfig, UsageError } from './command.ts'

const usage = `usage: ferry webhooks --config FILE --dead-letters

Print the webhook events that could not be delivered (after every attempt,
or queued when the process stopped), oldest first, one JSON line each:
the hook's name, the CloudEvent, the last error and when.

  --config FILE       the region file (its state holds the dead letters)`

export const webhooksCommand = defineCommand({
  name: 'webhooks',
  summary: 'print the webhook events that could not be delivered',
  usage,
  options: { config: { type: 'string', short: 'c' }, 'dead-letters': { type: 'boolean' } },
  async run (values) {
    const file = requireConfig(values.config, 'webhooks', usage)
    if (values['dead-letters'] !== true) throw new UsageError('ferry webhooks: say what to print (--dead-letters)', usage)
    const config = await loadRegion(file)
    const { deadLettersOf } = await import('../observe/webhook-dead-letters.ts')
    const { openState } = await import('../state/open-state.ts')
    // the embedded state opens no connection; a region's Redis holds its dead letters
    const opened = config.state.type === 'redis' ? await openState(config, createLogger('error'), { readyWithinMs: 10_000 }) : undefined
    try {
      for (const l of await deadLettersOf(config, opened?.redis).list()) console.log(JSON.stringify(l))
    } finally {
      await opened?.close()
    }
    return 0
  },
})
