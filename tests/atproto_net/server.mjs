// A real local atproto network (PLC + PDS + Bluesky AppView) for Amplify's tests.
//
// Environment (the pytest fixture sets all of these; see README.md):
//   DB_POSTGRES_URL   PostgreSQL database the AppView, bsync and ozone own (required)
//   CONTROL_PORT      loopback port for the control endpoint (default: any free port)
//   TMPDIR            a fresh folder: the PDS keeps its data and blobs under it
//   REDIS_HOST        asserted by TestNetwork though unused; defaults to a dummy value
//   EXIT_WITH_STDIN   "1": stop when stdin closes (the fixture's process died)
//
// Every server binds 127.0.0.1 only. Control endpoint (127.0.0.1:CONTROL_PORT):
//   GET  /info         {"pds_url", "plc_url", "appview_url"}
//   POST /process-all  makes the AppView catch up with everything the PDS wrote
// On ready, one line "ATPROTO_NET_READY <json of /info + control_url>" goes to stdout.

import net from 'node:net'
import http from 'node:http'

const LOOPBACK = '127.0.0.1'

// ---------------------------------------------------------------- loopback only
// Every server inside dev-env calls listen(port) on all interfaces: force the host.
const originalListen = net.Server.prototype.listen
net.Server.prototype.listen = function listenOnLoopback(...args) {
  const first = args[0]
  if (first !== null && typeof first === 'object' && !(first instanceof net.Server)) {
    if (first.path === undefined && first.handle === undefined && first.fd === undefined) {
      args[0] = { ...first, host: LOOPBACK }
    }
  } else if (typeof first === 'number' || (typeof first === 'string' && /^\d+$/.test(first))) {
    if (typeof args[1] === 'string') args[1] = LOOPBACK
    else args.splice(1, 0, LOOPBACK)
  } else if (first === undefined || typeof first === 'function') {
    args.unshift(0, LOOPBACK)
  }
  return originalListen.apply(this, args)
}

process.env.REDIS_HOST ||= 'unused.invalid'
process.env.DB_POSTGRES_SCHEMA ||= 'test'
process.env.LOG_ENABLED ||= 'false'

const dbUrl = process.env.DB_POSTGRES_URL
if (!dbUrl) {
  console.error('DB_POSTGRES_URL is not set: point it at an empty PostgreSQL database')
  process.exit(2)
}

// ---------------------------------------------------------------- fresh schemas
// The PLC lives in memory, so DIDs left in the AppView by an earlier run would be
// unknown to this one: wipe the schemas the network owns before it starts.
async function wipeSchemas() {
  const { default: pg } = await import('pg')
  const client = new pg.Client({ connectionString: dbUrl })
  await client.connect()
  try {
    const suffix = process.env.DB_POSTGRES_SCHEMA
    for (const schema of [`appview_${suffix}`, `bsync_${suffix}`, `ozone_${suffix}`]) {
      await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`)
    }
  } finally {
    await client.end()
  }
}

const rewriteToLoopback = (url) => url.replace('//localhost:', `//${LOOPBACK}:`)

async function main() {
  await wipeSchemas()
  const { TestNetwork } = await import('@atproto/dev-env')
  const started = Date.now()
  const network = await TestNetwork.create({ dbPostgresUrl: dbUrl })
  const info = {
    pds_url: rewriteToLoopback(network.pds.url),
    plc_url: rewriteToLoopback(network.plc.url),
    appview_url: rewriteToLoopback(network.bsky.url),
    startup_ms: Date.now() - started,
  }

  let queue = Promise.resolve()
  const control = http.createServer((req, res) => {
    const reply = (status, body) => {
      res.writeHead(status, { 'content-type': 'application/json' })
      res.end(JSON.stringify(body))
    }
    if (req.method === 'GET' && req.url === '/info') return reply(200, info)
    if (req.method === 'POST' && req.url === '/process-all') {
      // One processAll at a time: the AppView's subscription is not re-entrant.
      queue = queue
        .then(() => network.processAll())
        .then(
          () => reply(200, { ok: true }),
          (err) => reply(500, { ok: false, error: String(err?.message ?? err) }),
        )
      return undefined
    }
    return reply(404, { error: `no route ${req.method} ${req.url}` })
  })
  const controlPort = Number(process.env.CONTROL_PORT || 0)
  await new Promise((resolve) => control.listen(controlPort, LOOPBACK, resolve))
  info.control_url = `http://${LOOPBACK}:${control.address().port}`
  console.log(`ATPROTO_NET_READY ${JSON.stringify(info)}`)

  let closing = false
  const shutdown = async (signal) => {
    if (closing) return
    closing = true
    console.log(`atproto network: ${signal}, closing`)
    control.close()
    const timer = setTimeout(() => process.exit(0), 5000)
    timer.unref()
    try {
      await network.close()
    } catch (err) {
      console.error('atproto network: error while closing', err)
    }
    process.exit(0)
  }
  process.on('SIGTERM', () => shutdown('SIGTERM'))
  process.on('SIGINT', () => shutdown('SIGINT'))
  if (process.env.EXIT_WITH_STDIN === '1') {
    // The test runner holds our stdin open: if it dies without stopping us, we stop too.
    process.stdin.on('end', () => shutdown('stdin closed'))
    process.stdin.on('error', () => shutdown('stdin closed'))
    process.stdin.resume()
  }
}

main().catch((err) => {
  console.error('atproto network failed to start:', err)
  process.exit(1)
})
