// A containerd daemon of the test's own (Debian's package), with a
// hosts.toml folder, for pulls as a Kubernetes node makes them.
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { scratchDir, startProc } from './procs.ts'
import { requireBinary } from './registry.ts'

export interface Containerd {
  readonly sock: string
  /** The --hosts-dir to pass to ctr. */
  readonly hosts: string
  readonly pid: number
  stop (): Promise<void>
}

/**
 * `mirrors`: registry host -> the mirror URLs in order. The fallback server
 * is a dead loopback port, so a pull can only succeed through the mirrors.
 */
export async function startContainerd (mirrors: Record<string, readonly string[]>): Promise<Containerd> {
  requireBinary('containerd', 'containerd')
  requireBinary('ctr', 'containerd')
  // short: the socket path must fit in 108 bytes
  const dir = scratchDir('fc-', '/tmp')
  const sock = join(dir, 'c.sock')
  const hosts = join(dir, 'hosts')
  for (const [host, urls] of Object.entries(mirrors)) {
    mkdirSync(join(hosts, host), { recursive: true })
    writeFileSync(join(hosts, host, 'hosts.toml'), `server = "http://127.0.0.1:1"\n` +
      urls.map(u => `\n[host."${u}"]\n  capabilities = ["pull", "resolve"]\n`).join(''))
  }
  writeFileSync(join(dir, 'config.toml'), [
    'version = 2',
    `root = "${dir}/root"`,
    `state = "${dir}/state"`,
    'disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs"]',
    '[grpc]', `  address = "${sock}"`,
    '[ttrpc]', `  address = "${sock}.ttrpc"`,
    '[plugins."io.containerd.internal.v1.opt"]', `  path = "${dir}/opt"`,
  ].join('\n') + '\n')
  const proc = startProc('containerd', ['--config', join(dir, 'config.toml')])
  await proc.waitFor(/containerd successfully booted|serving\.\.\./, 30_000)
  return { sock, hosts, pid: proc.child.pid!, stop: () => proc.stop() }
}
