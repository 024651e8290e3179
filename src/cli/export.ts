// ferry export: a bundle of what a mirror list names, for an air-gapped site.
import { mkdir, readdir } from 'node:fs/promises'
import { parseSize } from '../common/units.ts'
import { loadRegion } from '../config/load.ts'
import { defineCommand, requireConfig, UsageError } from './command.ts'

const usage = `usage: ferry export --config FILE --list mirror.yaml --out DIR [--since site.inv [--trust KEY.pub]] [--part-size 4GiB] [--compress zstd]

Mirror the list into the region (what it holds is not fetched again) while
writing a bundle of it into DIR (new or empty): an OCI image layout as a tar, cut
into parts of at most --part-size, with bundle.json naming every part's size
and sha256 and every image. One uncompressed part is an ordinary OCI layout
tar (skopeo copy oci-archive:DIR/bundle.tar:NAME:TAG ...). Prints a JSON
report; exit 1 if an image could not be mirrored (the others are exported).

  --config FILE       the region file (connected side)
  --list FILE         the mirror list
  --out DIR           where the bundle goes
  --since FILE        the far site's inventory (ferry inventory): what it holds stays out
  --trust FILE        the far site's public key (PEM): the inventory must be signed by it
  --part-size SIZE    the largest part (default 4GiB; e.g. 700MiB for a CD)
  --compress zstd     zstd-compress the tar (parts are then bundle.tar.zst[.NNN])`

/** The bundle's disk failing: said in one line, not with a stack. */
const DISK_ERRORS = new Set(['ENOSPC', 'EDQUOT', 'EFBIG', 'EIO', 'EROFS', 'EACCES', 'EPERM'])

export const exportCommand = defineCommand({
  name: 'export',
  summary: 'write a bundle of a mirror list for an air-gapped site (--since its inventory: only what it lacks)',
  usage,
  options: { config: { type: 'string', short: 'c' }, list: { type: 'string' }, out: { type: 'string' }, since: { type: 'string' }, trust: { type: 'string' }, 'part-size': { type: 'string' }, compress: { type: 'string' } },
  async run (values) {
    const config = await loadRegion(requireConfig(values.config, 'export', usage))
    if (values.list === undefined) throw new UsageError('ferry export: --list FILE is required', usage)
    if (values.out === undefined) throw new UsageError('ferry export: --out DIR is required', usage)
    if (values.compress !== undefined && values.compress !== 'zstd') throw new UsageError('ferry export: --compress takes zstd', usage)
    if (values.trust !== undefined && values.since === undefined) throw new UsageError('ferry export: --trust goes with --since', usage)
    const partSize = values['part-size'] === undefined ? 4 * 1024 ** 3 : parseSize(values['part-size'])
    if (partSize === undefined || partSize < 1024 * 1024) throw new UsageError('ferry export: --part-size takes a size of 1MiB or more (700MiB, 4GiB)', usage)
    await mkdir(values.out, { recursive: true })
    if ((await readdir(values.out)).length > 0) {
      console.error(`ferry export: ${values.out} is not empty: a bundle goes into a new or empty folder`)
      return 1
    }
    const { loadMirrorList, MirrorListError } = await import('../airgap/mirror-list.ts')
    const { readInventory, InventoryError } = await import('../airgap/inventory.ts')
    let list
    let since = new Set<string>()
    try {
      list = await loadMirrorList(values.list)
      if (values.since !== undefined) {
        const inv = await readInventory(values.since, values.trust)
        since = new Set([...inv.manifests, ...inv.blobs])
      }
    } catch (err) {
      if (!(err instanceof MirrorListError) && !(err instanceof InventoryError)) throw err
      console.error(err.message)
      return 1
    }
    const { openCommandEdge } = await import('../airgap/command-edge.ts')
    const { Mirror } = await import('../airgap/mirror.ts')
    const { writeBundle } = await import('../airgap/export.ts')
    const edge = await openCommandEdge(config)
    const { client, progress } = edge
    try {
      // manifests now; each blob is fetched once, as it goes into the bundle (the edge fills the region with it on the way)
      const mirror = new Mirror({ edge: client, view: edge.view, progress, dryRun: true, collect: true })
      const mirrored = await mirror.run(list)
      progress.start(mirror.collected.length)
      let bundle
      try {
        bundle = await writeBundle({ out: values.out, edge: client, view: edge.view, collected: mirror.collected, since, partSize, compression: values.compress === 'zstd' ? 'zstd' : 'none', progress })
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code
        if (code === undefined || !DISK_ERRORS.has(code)) throw err
        progress.stop()
        console.error(`ferry export: refused: the bundle could not be written to ${values.out}: ${(err as Error).message}; what was written there is not a bundle (no bundle.json): remove it and export again where there is room`)
        return 1
      }
      progress.stop()
      const failures = mirrored.images.flatMap(i => i.failures.map(f => ({ image: i.name, ...f })))
      process.stdout.write(JSON.stringify({ ...bundle, failures }, null, 2) + '\n')
      return failures.length > 0 ? 1 : 0
    } finally {
      await edge.close()
    }
  },
})
