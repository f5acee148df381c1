// Launches Hocuspocus (@hocuspocus/server 3.4.x, installed by bench/install-peers.sh into
// .bench/node) on 127.0.0.1 and a given port (0 = any free one), without extensions (no
// persistence), accepting any token. Prints `listening on http://HOST:PORT` like plenary.
const path = require('path')
const { createRequire } = require('module')
const peers = process.env.PEERS_DIR || path.join(__dirname, '..', '..', '.bench', 'node')
const req = createRequire(path.join(peers, 'package.json'))
const { Server } = req('@hocuspocus/server')

const host = process.env.HOST || '127.0.0.1'
const port = parseInt(process.env.PORT || '0', 10)
const server = new Server({ address: host, port, quiet: true, stopOnSignals: true })
server.listen().then(() => {
  console.log(`listening on http://${host}:${server.address.port}`)
})
