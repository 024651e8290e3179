// Debian's slapd with a database of the test's own (a slapd.conf in a scratch
// folder, as ../shared/TESTING.md shows), seeded with LDIF; stopped by its pidfile.
import { execFile, spawn } from 'node:child_process'
import { readFileSync, writeFileSync, mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { freePort, scratchDir } from './procs.ts'
import { requireBinary } from './registry.ts'

const run = promisify(execFile)

export interface Slapd {
  readonly url: string
  readonly suffix: string
  readonly adminDN: string
  readonly adminPassword: string
  /** With `tls`: the CA that signed the server's certificate (for 127.0.0.1). */
  readonly caFile: string | undefined
  stop (): Promise<void>
}

/** A CA and a certificate for 127.0.0.1 signed by it (openssl). */
async function certificates (dir: string): Promise<{ ca: string, cert: string, key: string }> {
  requireBinary('openssl', 'openssl')
  const f = (n: string): string => join(dir, n)
  await run('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', '/CN=ferry test LDAP CA', '-keyout', f('ca.key'), '-out', f('ca.pem')])
  await run('openssl', ['req', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=127.0.0.1', '-keyout', f('server.key'), '-out', f('server.csr')])
  writeFileSync(f('ext.cnf'), 'subjectAltName=IP:127.0.0.1\n')
  await run('openssl', ['x509', '-req', '-in', f('server.csr'), '-CA', f('ca.pem'), '-CAkey', f('ca.key'), '-CAcreateserial', '-days', '2', '-extfile', f('ext.cnf'), '-out', f('server.pem')])
  return { ca: f('ca.pem'), cert: f('server.pem'), key: f('server.key') }
}

export async function startSlapd (ldif: string, adminPassword: string, opts: { tls?: boolean } = {}): Promise<Slapd> {
  requireBinary('slapd', 'slapd')
  requireBinary('ldapadd', 'ldap-utils')
  const dir = scratchDir('ferry-slapd-')
  mkdirSync(join(dir, 'db'))
  const tls = opts.tls === true ? await certificates(dir) : undefined
  const suffix = 'dc=example,dc=org'
  const adminDN = `cn=admin,${suffix}`
  writeFileSync(join(dir, 'slapd.conf'), [
    ...['core', 'cosine', 'inetorgperson', 'nis'].map(s => `include /etc/ldap/schema/${s}.schema`),
    `pidfile ${dir}/slapd.pid`,
    ...(tls !== undefined ? [`TLSCACertificateFile ${tls.ca}`, `TLSCertificateFile ${tls.cert}`, `TLSCertificateKeyFile ${tls.key}`] : []),
    'modulepath /usr/lib/ldap',
    'moduleload back_mdb',
    'database mdb',
    `suffix "${suffix}"`,
    `rootdn "${adminDN}"`,
    `rootpw ${adminPassword}`,
    `directory ${dir}/db`,
    'maxsize 10485760',
    // users may read what a bind is checked against; the rest is for the admin
    'access to attrs=userPassword by anonymous auth by self read by * none',
    'access to * by * read',
  ].join('\n') + '\n')
  const port = await freePort()
  const url = `ldap://127.0.0.1:${port}`
  await run('slapd', ['-f', join(dir, 'slapd.conf'), '-h', `${url}/`])
  // slapd forks and listens a moment later: the seed is retried until it lands
  for (let i = 0; ; i++) {
    const code = await new Promise<number | null>(resolve => {
      const child = spawn('ldapadd', ['-x', '-H', url, '-D', adminDN, '-w', adminPassword], { stdio: ['pipe', 'ignore', 'ignore'] })
      child.on('exit', resolve)
      child.stdin.end(ldif)
    })
    if (code === 0) break
    if (i > 50) throw new Error(`ldapadd could not seed slapd (exit ${code})`)
    await new Promise(resolve => setTimeout(resolve, 100))
  }
  return {
    url, suffix, adminDN, adminPassword, caFile: tls?.ca,
    async stop () {
      let pid: number
      try { pid = Number(readFileSync(join(dir, 'slapd.pid'), 'utf8').trim()) } catch { return }
      try { process.kill(pid, 'SIGTERM') } catch { return }
      for (let i = 0; i < 50; i++) {
        try { process.kill(pid, 0) } catch { return }
        await new Promise(resolve => setTimeout(resolve, 100))
      }
      try { process.kill(pid, 'SIGKILL') } catch {}
    },
  }
}
