// ferry inventory: what this (air-gapped) site holds, for ferry export --since.
import { loadRegion } from '../config/load.ts'
import { createLogger } from '../observe/logger.ts'
import { defineCommand, requireConfig } from './command.ts'

const usage = `usage: ferry inventory --config FILE [--key KEY.pem] > site.inv

Print what the region holds: its repositories with their tags, and the
digests of every manifest and blob they hold (digests only). Carry it to
the connected side: ferry export --since site.inv bundles only what this
site lacks. With --key (an Ed25519 private key, PEM) it is signed, and the
connected side checks it with --trust.

  --config FILE       the region file
  --key FILE          sign with this Ed25519 private key
                      (openssl genpkey -algorithm ed25519 -out site.key;
                       openssl pkey -in site.key -pubout -out site.pub)`

export const inventoryCommand = defineCommand({
  name: 'inventory',
  summary: 'print what the region holds (digests), for an export of only what it lacks',
  usage,
  options: { config: { type: 'string', short: 'c' }, key: { type: 'string' } },
  async run (values) {
    const config = await loadRegion(requireConfig(values.config, 'inventory', usage))
    const { openState } = await import('../state/open-state.ts')
    const { takeInventory, signInventory } = await import('../airgap/inventory.ts')
    const { progressFor } = await import('../airgap/progress.ts')
    const opened = await openState(config, createLogger('silent'), { readyWithinMs: 5000 })
    try {
      let inv = await takeInventory(opened.state, config.region, progressFor(process.stderr, 'repositories'))
      if (values.key !== undefined) inv = await signInventory(inv, values.key)
      process.stdout.write(JSON.stringify(inv) + '\n')
      return 0
    } finally {
      await opened.close()
    }
  },
})
