// Launches the reference y-websocket server (@y/websocket-server 0.1.1, installed by
// bench/install-peers.sh into .bench/node) on 127.0.0.1 and a given port (0 = any free one).
// Prints `listening on http://HOST:PORT` like plenary. Same code path as the package's own
// bin (src/server.js): setupWSConnection for every upgrade, no persistence (YPERSISTENCE unset).
const path = require('path')
const { createRequire } = require('module')
const peers = process.env.PEERS_DIR || path.join(__dirname, '..', '..', '.bench', 'node')
const req = createRequire(path.join(peers, 'package.json'))
const WebSocket = req('ws')
const http = require('http')
const { setupWSConnection } = req('@y/websocket-server/utils')

const host = process.env.HOST || '127.0.0.1'
const port = parseInt(process.env.PORT || '0', 10)
const wss = new WebSocket.Server({ noServer: true })
const server = http.createServer((_req, res) => { res.writeHead(200, { 'Content-Type': 'text/plain' }); res.end('okay') })
wss.on('connection', setupWSConnection)
server.on('upgrade', (request, socket, head) => {
  wss.handleUpgrade(request, socket, head, ws => wss.emit('connection', ws, request))
})
server.listen(port, host, () => {
  console.log(`listening on http://${host}:${server.address().port}`)
})
for (const s of ['SIGINT', 'SIGTERM']) process.on(s, () => process.exit(0))
