// The Kubernetes manifests (deploy/kubernetes): each overlay rendered with
// `kubectl kustomize`, every object validated against the Kubernetes
// schemas (kubernetes-models; the Prometheus operator's for ServiceMonitor),
// every reference between objects resolved (service accounts, ConfigMaps,
// Secrets the README names, volumes, selectors, the HPA's target, the Redis
// Service the region file names), and the region file in each ConfigMap
// accepted by `ferry check`.
import { execFile } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { promisify } from 'node:util'
import t from 'tap'
import { parseAllDocuments, parse as parseYaml } from 'yaml'
import { CLI, ROOT } from '../helpers/ferry.ts'
import { scratchDir } from '../helpers/procs.ts'
import { requireBinary } from '../helpers/registry.ts'

const run = promisify(execFile)
const dir = scratchDir('ferry-k8s-')
type Obj = { apiVersion: string, kind: string, metadata: { name: string, namespace?: string, labels?: Record<string, string> }, spec?: any, data?: Record<string, string> } // eslint-disable-line @typescript-eslint/no-explicit-any

/** Secrets the operator makes (README, Kubernetes): named, never rendered. */
const EXTERNAL_SECRETS = new Set(['ferry-redis', 'ferry-s3', 'ferry-replication'])

async function render (overlay: string): Promise<Obj[]> {
  const { stdout } = await run('kubectl', ['kustomize', join(ROOT, 'deploy', 'kubernetes', 'overlays', overlay)], { maxBuffer: 16 * 1024 * 1024 })
  return parseAllDocuments(stdout).map(d => d.toJSON() as Obj).filter(o => o !== null)
}

async function validate (o: Obj): Promise<void> {
  const [group, version] = o.apiVersion.includes('/') ? o.apiVersion.split('/') as [string, string] : ['', o.apiVersion]
  const module = group === 'monitoring.coreos.com'
    ? `@kubernetes-models/prometheus-operator/${group}/${version}/${o.kind}`
    : `kubernetes-models/${group === '' ? '' : `${group}/`}${version}/${o.kind}`
  const Model = ((await import(module)) as Record<string, new (o: Obj) => { validate: () => void }>)[o.kind]!
  new Model(o).validate()
}

function podSpecs (objs: Obj[]): { owner: Obj, spec: any }[] { // eslint-disable-line @typescript-eslint/no-explicit-any
  return objs.filter(o => o.kind === 'Deployment' || o.kind === 'DaemonSet').map(o => ({ owner: o, spec: o.spec.template.spec }))
}

for (const overlay of ['single', 'region', 'replicator', 'node-hosts']) {
  t.test(`overlay ${overlay}`, async t => {
    requireBinary('kubectl', 'kubectl')
    const objs = await render(overlay)
    const byKind = (kind: string): Obj[] => objs.filter(o => o.kind === kind)
    const named = (kind: string, name: string): Obj | undefined => objs.find(o => o.kind === kind && o.metadata.name === name)
    for (const o of objs) {
      await t.resolves(validate(o), `${o.kind} ${o.metadata.name} is valid against the schema`)
      if (o.kind !== 'Namespace') t.ok(['ferry', 'ferry-node'].includes(o.metadata.namespace ?? ''), `${o.kind} ${o.metadata.name} is in ferry's namespaces`)
    }
    t.ok(overlay === 'node-hosts' ? named('Namespace', 'ferry-node') : named('Namespace', 'ferry'), 'the namespace is defined')
    for (const { owner, spec } of podSpecs(objs)) {
      const where = `${owner.kind} ${owner.metadata.name}`
      if (spec.serviceAccountName !== undefined) t.ok(named('ServiceAccount', spec.serviceAccountName), `${where}: its service account ${spec.serviceAccountName} is defined`)
      for (const c of [...(spec.initContainers ?? []), ...spec.containers]) {
        const nonRoot = c.securityContext?.runAsNonRoot ?? spec.securityContext?.runAsNonRoot
        // the one exception: the node-hosts writer, root to write the node's root-owned certs.d, with no capability
        if (owner.metadata.name === 'ferry-node-hosts' && c.name === 'hosts') t.same(c.securityContext.capabilities.drop, ['ALL'], `${where}/${c.name}: root with every capability dropped`)
        else t.equal(nonRoot, true, `${where}/${c.name}: runs as non-root`)
      }
      for (const v of spec.volumes ?? []) {
        if (v.configMap !== undefined) t.ok(named('ConfigMap', v.configMap.name), `${where}: ConfigMap ${v.configMap.name} is defined`)
        if (v.persistentVolumeClaim !== undefined) t.ok(named('PersistentVolumeClaim', v.persistentVolumeClaim.claimName), `${where}: claim ${v.persistentVolumeClaim.claimName} is defined`)
      }
      for (const c of spec.containers) {
        t.equal(c.securityContext?.allowPrivilegeEscalation, false, `${where}/${c.name}: no privilege escalation`)
        t.ok(c.resources?.limits?.memory !== undefined, `${where}/${c.name}: a memory limit`)
        for (const e of c.env ?? []) {
          const ref = e.valueFrom?.secretKeyRef
          if (ref !== undefined) t.ok(EXTERNAL_SECRETS.has(ref.name) || named('Secret', ref.name), `${where}/${c.name}: Secret ${ref.name} is one the README names`)
        }
        for (const m of c.volumeMounts ?? []) t.ok((spec.volumes ?? []).some((v: { name: string }) => v.name === m.name), `${where}/${c.name}: volume ${m.name} is defined`)
      }
    }
    // every selector selects pods some Deployment makes
    // node-hosts is applied beside the region: its NodePort selects the region's proxies
    const beside = overlay === 'node-hosts' ? await render('region') : []
    const podLabels = podSpecs([...objs, ...beside]).map(p => p.owner.spec.template.metadata.labels as Record<string, string>)
    const selects = (sel: Record<string, string>): boolean => podLabels.some(l => Object.entries(sel).every(([k, v]) => l[k] === v))
    for (const s of byKind('Service')) t.ok(selects(s.spec.selector), `Service ${s.metadata.name} selects pods`)
    for (const p of byKind('PodDisruptionBudget')) t.ok(selects(p.spec.selector.matchLabels), `PodDisruptionBudget ${p.metadata.name} selects pods`)
    for (const m of byKind('ServiceMonitor')) {
      const svc = byKind('Service').find(s => Object.entries(m.spec.selector.matchLabels as Record<string, string>).every(([k, v]) => s.metadata.labels?.[k] === v))
      t.ok(svc, `ServiceMonitor ${m.metadata.name} selects a Service`)
      for (const e of m.spec.endpoints) t.ok(svc?.spec.ports.some((p: { name: string }) => p.name === e.port), `ServiceMonitor ${m.metadata.name}: port ${e.port} is the Service's`)
    }
    for (const h of byKind('HorizontalPodAutoscaler')) t.ok(named(h.spec.scaleTargetRef.kind, h.spec.scaleTargetRef.name), `HPA ${h.metadata.name} scales a Deployment that exists`)

    // the region file: ferry's own check, and the services it names
    for (const v of podSpecs(objs).flatMap(p => p.spec.volumes ?? [])) {
      if (v.configMap !== undefined) {
        const cmNs = named('ConfigMap', v.configMap.name)?.metadata.namespace
        const owner = podSpecs(objs).find(p => (p.spec.volumes ?? []).includes(v))!.owner
        t.equal(cmNs, owner.metadata.namespace, `ConfigMap ${v.configMap.name} is in its reader's namespace`)
      }
    }
    const cm = byKind('ConfigMap').find(c => c.metadata.name.startsWith('ferry-region'))!
    t.ok(cm, 'the region file is a ConfigMap')
    const file = join(dir, `${overlay}.yaml`)
    writeFileSync(file, cm.data!['region.yaml']!)
    const checked = await run(process.execPath, [CLI, 'check', '--config', file])
    t.match(checked.stdout, /: ok \(region /, 'ferry check accepts the region file')
    const region = parseYaml(cm.data!['region.yaml']!) as { state?: { url?: string }, replication?: { edge?: string } }
    if (region.state?.url !== undefined && overlay !== 'replicator' && overlay !== 'node-hosts') {
      const host = new URL(region.state.url).hostname
      t.ok(named('Service', host), `the Redis the region file names (${host}) is a Service here`)
    }
    if (overlay === 'region') {
      const proxy = named('Deployment', 'ferry')!
      t.ok(byKind('HorizontalPodAutoscaler').length === 1, 'proxies scale on CPU')
      t.same(proxy.spec.template.spec.containers[0].readinessProbe.httpGet.path, '/readyz', 'ready when /readyz says so')
      t.ok(proxy.spec.template.spec.topologySpreadConstraints.length > 0, 'spread over nodes')
      t.ok(proxy.spec.template.spec.containers[0].env.some((e: { name: string }) => e.name === 'FERRY_PEER_ADVERTISE'), 'each proxy advertises its pod address to the others')
    }
    if (overlay === 'node-hosts') {
      const ds = named('DaemonSet', 'ferry-node-hosts')!
      t.equal(named('Namespace', 'ferry-node')!.metadata.labels!['pod-security.kubernetes.io/enforce'], 'privileged', 'its namespace allows the hostPath')
      t.equal(named('Service', 'ferry-nodeport')!.spec.type, 'NodePort')
      // run the init container's own command here, with a node address for $(HOST_IP)
      const init = ds.spec.template.spec.initContainers[0]
      const out = join(dir, 'node-certs.d')
      const args = (init.args as string[]).map(a => a.replace('$(HOST_IP)', '10.0.0.7').replace('/etc/ferry/region.yaml', file).replace('/host/etc/containerd/certs.d', out))
      await run(process.execPath, [CLI, ...args])
      const toml = readFileSync(join(out, 'docker.io', 'hosts.toml'), 'utf8')
      t.match(toml, '[host."http://10.0.0.7:30500"]', 'the command writes the node\'s hosts.toml, naming the proxies at the node\'s address')
      t.ok(ds.spec.template.spec.volumes.some((v: { hostPath?: { path: string } }) => v.hostPath?.path === '/etc/containerd/certs.d'), 'into the node\'s certs.d')
    }
    if (overlay === 'replicator') {
      const r = named('Deployment', 'ferry-replicator')!
      t.equal(r.spec.replicas, 1, 'one replicator')
      t.equal(r.spec.strategy.type, 'Recreate', 'never two during a rollout')
      t.ok(region.replication?.edge, 'the replicator knows the region\'s edge')
    }
  })
}
