// nginx as the load balancer in front of a region's proxies, as operators
// run one: round robin per request, request and answer bodies streamed (no
// buffering), no body size limit.
import { mkdirSync, writeFileSync } from 'node:fs'
import { userInfo } from 'node:os'
import { join } from 'node:path'
import { freePort, scratchDir, startProc } from './procs.ts'
import { requireBinary } from './registry.ts'

export interface Balancer {
  readonly url: string
  readonly host: string
  stop (): Promise<void>
}

export async function startBalancer (backends: readonly string[]): Promise<Balancer> {
  requireBinary('nginx', 'nginx')
  const dir = scratchDir('ferry-lb-')
  for (const sub of ['client_temp', 'proxy_temp', 'fastcgi_temp', 'uwsgi_temp', 'scgi_temp']) mkdirSync(join(dir, sub))
  const port = await freePort()
  const conf = `daemon off;
user ${userInfo().username};
worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path ${dir}/client_temp;
  proxy_temp_path ${dir}/proxy_temp;
  fastcgi_temp_path ${dir}/fastcgi_temp;
  uwsgi_temp_path ${dir}/uwsgi_temp;
  scgi_temp_path ${dir}/scgi_temp;
  upstream region { ${backends.map(b => `server ${new URL(b).host};`).join(' ')} }
  server {
    listen 127.0.0.1:${port};
    client_max_body_size 0;
    proxy_http_version 1.1;
    proxy_request_buffering off;
    proxy_buffering off;
    proxy_redirect off;
    proxy_set_header Host $http_host;
    proxy_set_header Connection "";
    proxy_read_timeout 300s;
    location / { proxy_pass http://region; }
  }
}
`
  writeFileSync(join(dir, 'nginx.conf'), conf)
  const proc = startProc('nginx', ['-c', join(dir, 'nginx.conf'), '-p', dir])
  for (let i = 0; i < 100; i++) {
    const up = await fetch(`http://127.0.0.1:${port}/`).then(() => true, () => false)
    if (up) break
    await new Promise(resolve => setTimeout(resolve, 50))
  }
  return { url: `http://127.0.0.1:${port}`, host: `127.0.0.1:${port}`, stop: () => proc.stop('SIGQUIT') }
}
