// ferry mirror: fill the region from a mirror list, then say what happened.
import { writeFile } from 'node:fs/promises'
import { loadRegion } from '../config/load.ts'
import { defineCommand, requireConfig, UsageError } from './command.ts'

const usage = `usage: ferry mirror --config FILE --list mirror.yaml [--dry-run] [--report FILE]

Fill the region with the images a mirror list names (by tag, tag pattern,
semver range or digest; an index whole or only some platforms; with their
referrers), through the region's own cache: what it holds already is not
fetched again. Keeps going past a failing image. Prints a JSON report
(every image, reference, digest, bytes, and each failure with its reason)
on stdout, or into --report FILE; exit 1 if anything failed.

  --config FILE       the region file
  --list FILE         the mirror list (see the README, "Air-gapped sites")
  --dry-run           fetch manifests only, and report the bytes a run would fetch
  --report FILE       write the report here instead of stdout`

export const mirrorCommand = defineCommand({
  name: 'mirror',
  summary: 'fill the region from a mirror list (images, tags, platforms, referrers)',
  usage,
  options: { config: { type: 'string', short: 'c' }, list: { type: 'string' }, 'dry-run': { type: 'boolean' }, report: { type: 'string' } },
  async run (values) {
    const config = await loadRegion(requireConfig(values.config, 'mirror', usage))
    if (values.list === undefined) throw new UsageError('ferry mirror: --list FILE is required', usage)
    const { loadMirrorList, MirrorListError } = await import('../airgap/mirror-list.ts')
    let list
    try {
      list = await loadMirrorList(values.list)
    } catch (err) {
      if (!(err instanceof MirrorListError)) throw err
      console.error(err.message)
      return 1
    }
    const { openCommandEdge } = await import('../airgap/command-edge.ts')
    const { Mirror } = await import('../airgap/mirror.ts')
    const edge = await openCommandEdge(config)
    try {
      const report = await new Mirror({ edge: edge.client, view: edge.view, progress: edge.progress, dryRun: values['dry-run'] === true }).run(list)
      const text = JSON.stringify(report, null, 2) + '\n'
      if (values.report !== undefined) await writeFile(values.report, text)
      else process.stdout.write(text)
      return report.failures > 0 ? 1 : 0
    } finally {
      await edge.close()
    }
  },
})
