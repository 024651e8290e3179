// A Docker engine of the test's own (Debian's docker.io, 20.10), started by
// hand with private folders, no networking of its own and vfs storage, as
// ../shared/TESTING.md shows. Its traffic to anything but loopback goes to a
// dead proxy, so a failed pull can never reach Docker Hub.
import { execFile } from 'node:child_process'
import { existsSync, mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { scratchDir, startProc } from './procs.ts'
import { requireBinary } from './registry.ts'

const run = promisify(execFile)

export interface Dockerd {
  /** Run the docker CLI against this engine; rejects with its stderr on failure. */
  docker (args: string[], input?: string): Promise<string>
  stop (): Promise<void>
}

/** `insecure`: registries (HOST:PORT) it may use over plain HTTP. */
export async function startDockerd (insecure: readonly string[], mirrors: readonly string[] = []): Promise<Dockerd> {
  requireBinary('dockerd', 'docker.io')
  // the Debian package's CLI matches its engine; another docker on the PATH may be newer
  const cli = existsSync('/usr/bin/docker') ? '/usr/bin/docker' : 'docker'
  const dir = scratchDir('fd-', '/tmp')
  for (const sub of ['data', 'exec', 'cli']) mkdirSync(join(dir, sub))
  writeFileSync(join(dir, 'daemon.json'), JSON.stringify({ 'deprecated-key-path': join(dir, 'key.json') }))
  const sock = join(dir, 'd.sock')
  const proc = startProc('dockerd', [
    '--config-file', join(dir, 'daemon.json'), '--data-root', join(dir, 'data'), '--exec-root', join(dir, 'exec'),
    '--pidfile', join(dir, 'pid'), '-H', `unix://${sock}`, '--storage-driver', 'vfs',
    '--iptables=false', '--ip6tables=false', '--ip-forward=false', '--ip-masq=false', '--bridge=none',
    ...insecure.flatMap(r => ['--insecure-registry', r]),
    ...mirrors.flatMap(m => ['--registry-mirror', m]),
  ], { env: { ...process.env, HTTPS_PROXY: 'http://127.0.0.1:9', HTTP_PROXY: 'http://127.0.0.1:9', NO_PROXY: '127.0.0.1,localhost' } })
  await proc.waitFor(/API listen on/, 60_000)
  const env = { ...process.env, DOCKER_HOST: `unix://${sock}`, DOCKER_CONFIG: join(dir, 'cli') }
  return {
    async docker (args, input) {
      try {
        const child = run(cli, args, { env, maxBuffer: 16 * 1024 * 1024, timeout: 120_000 })
        child.child.stdin?.end(input ?? '')
        const { stdout } = await child
        return stdout
      } catch (err) {
        throw new Error(`docker ${args.join(' ')}: ${String((err as { stderr?: string }).stderr ?? err)}`)
      }
    },
    stop: () => proc.stop('SIGTERM'),
  }
}
