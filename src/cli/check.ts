// ferry check: validate a region file, every problem at once.
import { loadRegion } from '../config/load.ts'
import { nsHosts } from '../upstream/router.ts'
import { defineCommand, overridesOf, REGION_FLAGS, REGION_FLAGS_USAGE, requireConfig } from './command.ts'

const usage = `usage: ferry check --config FILE [--listen HOST:PORT] [--data DIR] [--upstream URL] [--workers N]

Check a region file (with the overrides serve would apply): every problem,
each with the field, what was expected and what is there. Exit 1 if any.

${REGION_FLAGS_USAGE}`

export const checkCommand = defineCommand({
  name: 'check',
  summary: 'check a region file and report every problem in it',
  usage,
  options: REGION_FLAGS,
  async run (values) {
    const file = requireConfig(values.config, 'check', usage)
    const config = await loadRegion(file, overridesOf(values, usage, 'check'))
    console.log(`${file}: ok (region ${config.region}, ${config.upstreams.length} upstream${config.upstreams.length === 1 ? '' : 's'})`)
    // what containerd's ?ns= reaches: an operator whose nodes mirror another registry sees it is refused
    const hosts = nsHosts(config.upstreams.map(u => ({ config: u })))
    for (const u of config.upstreams) {
      const names = [...hosts].filter(([, to]) => to.config === u).map(([host]) => host).sort()
      console.log(`  upstream ${u.name}: ${u.prefix !== undefined ? `/v2/${u.prefix}/..., ` : ''}?ns= ${names.length > 0 ? names.join(', ') : '(none)'}${config.defaultUpstream === u ? '; the default, for names with neither a prefix nor an ?ns=' : ''}`)
    }
    console.log(`  ?ns= naming ferry itself (routed as none): the Host a request comes with${config.hostnames.length > 0 ? `, ${config.hostnames.join(', ')}` : ''}; any other ?ns=: refused (404 NAME_UNKNOWN)`)
    return 0
  },
})
