#!/usr/bin/env node
// A small stand-in for `plenary serve`, for developing the web client without the Rust server.
// It follows docs/PLENARY_LAYOUT.md closely enough for the client and its browser tests, and is NOT
// the product: no rate limits, no size limits, naive persistence (one file per document).
// Usage: node dev/mock-server.mjs serve --addr 127.0.0.1:0 --data-dir DIR --admin-token T [--no-demo]
import http from 'node:http'
import fs from 'node:fs'
import path from 'node:path'
import crypto from 'node:crypto'
import { fileURLToPath } from 'node:url'
import { WebSocketServer } from 'ws'
import * as Y from 'yjs'
import * as syncProtocol from 'y-protocols/sync'
import * as awarenessProtocol from 'y-protocols/awareness'
import * as encoding from 'lib0/encoding'
import * as decoding from 'lib0/decoding'

const args = process.argv.slice(2)
const opt = (name, def) => {
  const i = args.indexOf(name)
  return i >= 0 ? args[i + 1] : def
}
const addr = opt('--addr', '127.0.0.1:8080')
const dataDir = opt('--data-dir', './plenary-data')
const adminToken = opt('--admin-token', 'admin')
const distDir = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'dist')
fs.mkdirSync(dataDir, { recursive: true })
const metaFile = path.join(dataDir, 'meetings.json')
const meetings = fs.existsSync(metaFile) ? JSON.parse(fs.readFileSync(metaFile, 'utf8')) : {}
const saveMeetings = () => fs.writeFileSync(metaFile, JSON.stringify(meetings, null, 1))
const tok = () => crypto.randomBytes(16).toString('base64url')
const ID = /^[a-z0-9][a-z0-9-]{0,62}$/

// ---------- documents ----------
const rooms = new Map() // name -> { doc, awareness, conns:Set, file }
function roomFile(name) {
  return path.join(dataDir, name.replace('/', '__') + '.bin')
}
function getRoom(m, g) {
  const name = `${m}/${g}`
  let r = rooms.get(name)
  if (r) return r
  const doc = new Y.Doc()
  const file = roomFile(name)
  if (fs.existsSync(file)) Y.applyUpdate(doc, fs.readFileSync(file))
  const awareness = new awarenessProtocol.Awareness(doc)
  awareness.setLocalState(null)
  r = { name, m, g, doc, awareness, conns: new Set(), file }
  rooms.set(name, r)
  doc.on('update', (update, origin) => {
    fs.writeFileSync(file, Y.encodeStateAsUpdate(doc)) // durable before relay
    const enc = encoding.createEncoder()
    encoding.writeVarUint(enc, 0)
    syncProtocol.writeUpdate(enc, update)
    const msg = encoding.toUint8Array(enc)
    for (const c of r.conns) if (c !== origin) send(c, msg)
    const sv = Y.encodeStateVector(doc)
    for (const c of r.conns) if (c.ack) send(c, ackMsg(sv))
    if (g !== 'plenary') mergeIntoPlenary(m, g)
  })
  if (g === 'plenary') initPlenary(m, doc)
  return r
}
function ackMsg(sv) {
  const enc = encoding.createEncoder()
  encoding.writeVarUint(enc, 100)
  encoding.writeVarUint8Array(enc, sv)
  return encoding.toUint8Array(enc)
}
function send(conn, msg) {
  if (conn.ws.readyState === 1) conn.ws.send(msg)
}
function initPlenary(m, doc) {
  const meeting = meetings[m]
  doc.transact(() => {
    const meta = doc.getMap('meta')
    if (meta.get('meeting_id') !== m) meta.set('meeting_id', m)
    if (meta.get('title') !== meeting.title) meta.set('title', meeting.title)
    const cur = doc.getMap('curation')
    if (!(cur.get('intro') instanceof Y.Text)) cur.set('intro', new Y.Text())
    if (!(cur.get('closing') instanceof Y.Text)) cur.set('closing', new Y.Text())
    if (!(cur.get('hidden') instanceof Y.Map)) cur.set('hidden', new Y.Map())
    const groups = doc.getArray('groups')
    meeting.groups.forEach((g, i) => {
      let gm = groups.length > i ? groups.get(i) : null
      if (!gm || gm.get('id') !== g.id) {
        gm = new Y.Map()
        gm.set('id', g.id)
        gm.set('title', g.title)
        gm.set('closed', !!g.closed)
        gm.set('conclusions', new Y.Array())
        groups.insert(i, [gm])
      }
    })
  }, 'server')
  for (const g of meeting.groups) {
    const gr = getRoom(m, g.id)
    if (gr) mergeIntoPlenary(m, g.id)
  }
}
function setText(yt, s) {
  const a = yt.toString()
  if (a === s) return
  let i = 0
  while (i < a.length && i < s.length && a[i] === s[i]) i++
  let ea = a.length, es = s.length
  while (ea > i && es > i && a[ea - 1] === s[es - 1]) { ea--; es-- }
  if (ea > i) yt.delete(i, ea - i)
  if (es > i) yt.insert(i, s.slice(i, es))
}
function mergeIntoPlenary(m, gid) {
  const p = rooms.get(`${m}/plenary`)
  const src = rooms.get(`${m}/${gid}`)
  if (!p || !src) return
  const gm = p.doc.getArray('groups').toArray().find((x) => x.get('id') === gid)
  if (!gm) return
  const list = src.doc.getArray('conclusions').toArray().filter((x) => x instanceof Y.Map)
  p.doc.transact(() => {
    const closed = !!meetings[m].groups.find((g) => g.id === gid)?.closed
    if (gm.get('closed') !== closed) gm.set('closed', closed)
    const arr = gm.get('conclusions')
    const want = list.map((c) => ({ id: String(c.get('id')), text: c.get('text')?.toString() ?? '', status: c.get('status') === 'final' ? 'final' : 'draft' }))
    const same = arr.length === want.length && arr.toArray().every((x, i) => x.get('id') === want[i].id)
    if (!same) {
      const old = new Map(arr.toArray().map((x) => [x.get('id'), x]))
      arr.delete(0, arr.length)
      arr.push(want.map((w) => { const x = new Y.Map(); x.set('id', w.id); x.set('text', new Y.Text(w.text)); x.set('status', w.status); return x }))
      void old
    } else {
      arr.toArray().forEach((x, i) => {
        setText(x.get('text'), want[i].text)
        if (x.get('status') !== want[i].status) x.set('status', want[i].status)
      })
    }
  }, 'server')
}

function role(m, token) {
  const mt = meetings[m]
  if (!mt || !token) return null
  if (token === mt.tokens.moderator) return { role: 'moderator' }
  if (token === mt.tokens.participant) return { role: 'participant' }
  for (const [g, t] of Object.entries(mt.tokens.rapporteurs)) if (t === token) return { role: 'rapporteur', group: g }
  return null
}
const otherMeeting = (token) => Object.keys(meetings).some((k) => role(k, token))
const canWrite = (r, g) => r.role === 'moderator' || (r.role === 'rapporteur' && r.group === g && g !== 'plenary')

function publishCounts(room) {
  let f = 0, w = 0
  for (const c of room.conns) c.write ? w++ : f++
  const closed = room.g !== 'plenary' && !!meetings[room.m]?.groups.find((x) => x.id === room.g)?.closed
  const st = { server: { followers: f, writers: w, closed } }
  const meta = room.awareness.meta.get(0)
  const clock = (meta?.clock ?? 0) + 1
  room.awareness.meta.set(0, { clock, lastUpdated: Date.now() })
  room.awareness.states.set(0, st)
  const enc = encoding.createEncoder()
  encoding.writeVarUint(enc, 1)
  encoding.writeVarUint8Array(enc, awarenessProtocol.encodeAwarenessUpdate(room.awareness, [0]))
  const msg = encoding.toUint8Array(enc)
  for (const c of room.conns) send(c, msg)
}

// ---------- HTTP ----------
const json = (res, status, body) => {
  res.writeHead(status, { 'content-type': 'application/json' })
  res.end(JSON.stringify(body))
}
const err = (res, status, code, message) => json(res, status, { error: { code, message } })
const bearer = (req, url) => (req.headers.authorization ?? '').replace(/^Bearer\s+/i, '') || url.searchParams.get('token')
const readBody = (req) => new Promise((resolve) => { let b = ''; req.on('data', (d) => (b += d)); req.on('end', () => resolve(b)) })
const base = () => `http://${server.address().address}:${server.address().port}`

function summary(m) {
  const mt = meetings[m]
  const p = getRoom(m, 'plenary').doc
  const cur = p.getMap('curation')
  const hidden = cur.get('hidden')
  const order = Array.isArray(cur.get('order')) ? cur.get('order') : mt.groups.map((g) => g.id)
  const ids = [...order.filter((id) => mt.groups.some((g) => g.id === id)), ...mt.groups.map((g) => g.id).filter((id) => !order.includes(id))]
  return {
    meeting: { id: m, title: mt.title },
    generated_at: new Date().toISOString(),
    groups: ids.map((id) => {
      const g = mt.groups.find((x) => x.id === id)
      const conc = getRoom(m, id).doc.getArray('conclusions').toArray()
        .map((c) => ({ id: c.get('id'), text: c.get('text')?.toString() ?? '', status: c.get('status') }))
        .filter((c) => c.text.trim() && !(hidden instanceof Y.Map && hidden.get(`${id}/${c.id}`)))
      return { id, title: g.title, conclusions: conc }
    }),
  }
}
function renderSummary(res, s, ext) {
  if (ext === 'json') return json(res, 200, s)
  const md = `# ${s.meeting.title}\n\n` + s.groups.map((g) => `## ${g.title}\n\n` + g.conclusions.map((c) => `- ${c.text}`).join('\n')).join('\n\n') + '\n'
  if (ext === 'md') { res.writeHead(200, { 'content-type': 'text/markdown; charset=utf-8' }); return res.end(md) }
  const esc = (t) => t.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c])
  res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' })
  res.end(`<!doctype html><html lang="en"><meta charset="utf-8"><title>${esc(s.meeting.title)}</title><h1>${esc(s.meeting.title)}</h1>` + s.groups.map((g) => `<h2>${esc(g.title)}</h2><ul>${g.conclusions.map((c) => `<li>${esc(c.text)}</li>`).join('')}</ul>`).join(''))
}

const server = http.createServer(async (req, res) => {
  const url = new URL(req.url, 'http://x')
  const p = url.pathname
  try {
    if (p === '/healthz') return res.end('ok')
    if (p === '/api/meetings' && req.method === 'POST') {
      if (bearer(req, url) !== adminToken) return err(res, 401, 'unauthorized', 'Admin token required.')
      let body
      try { body = JSON.parse(await readBody(req)) } catch { return err(res, 400, 'bad_request', 'Body is not JSON.') }
      const id = body.id ?? 'm-' + crypto.randomBytes(4).toString('hex')
      if (!ID.test(id) || typeof body.title !== 'string' || !Array.isArray(body.groups) || body.groups.some((g) => !ID.test(g.id) || g.id === 'plenary')) return err(res, 400, 'bad_request', 'Invalid meeting.')
      if (meetings[id]) return err(res, 409, 'exists', 'A meeting with this id exists.')
      const groups = body.groups.map((g) => ({ id: g.id, title: g.title, closed: false }))
      const tokens = { moderator: tok(), participant: tok(), rapporteurs: Object.fromEntries(groups.map((g) => [g.id, tok()])) }
      meetings[id] = { id, title: body.title, groups, tokens, versions: [] }
      saveMeetings()
      const b = base()
      return json(res, 201, {
        id, title: body.title, groups: groups.map(({ id, title }) => ({ id, title })), tokens,
        links: {
          moderator: `${b}/m/${id}/console#token=${tokens.moderator}`, projector: `${b}/m/${id}/projector#token=${tokens.participant}`,
          participant: `${b}/m/${id}#token=${tokens.participant}`,
          rapporteurs: Object.fromEntries(groups.map((g) => [g.id, `${b}/m/${id}/g/${g.id}#token=${tokens.rapporteurs[g.id]}`])),
        },
      })
    }
    const mm = /^\/api\/meetings\/([^/]+)(\/.*)?$/.exec(p)
    if (mm) {
      const m = mm[1], rest = mm[2] ?? ''
      if (!meetings[m]) return err(res, 404, 'not_found', 'No such meeting.')
      const r = role(m, bearer(req, url))
      if (!r) return otherMeeting(bearer(req, url)) ? err(res, 403, 'forbidden', 'Token of another meeting.') : err(res, 401, 'unauthorized', 'Token required.')
      const mt = meetings[m]
      if (!rest && req.method === 'GET') return json(res, 200, { id: m, title: mt.title, groups: mt.groups, ...r })
      const gc = /^\/groups\/([^/]+)\/(close|reopen)$/.exec(rest)
      const setClosed = (g, v) => {
        g.closed = v
        saveMeetings()
        if (rooms.has(`${m}/plenary`)) mergeIntoPlenary(m, g.id)
        if (rooms.has(`${m}/${g.id}`)) publishCounts(rooms.get(`${m}/${g.id}`))
      }
      if (gc && req.method === 'POST') {
        if (r.role !== 'moderator') return err(res, 403, 'forbidden', 'Moderator only.')
        const g = mt.groups.find((x) => x.id === gc[1])
        if (!g) return err(res, 404, 'not_found', 'No such group.')
        getRoom(m, 'plenary'); setClosed(g, gc[2] === 'close')
        return json(res, 200, g)
      }
      if ((rest === '/close' || rest === '/reopen') && req.method === 'POST') {
        if (r.role !== 'moderator') return err(res, 403, 'forbidden', 'Moderator only.')
        getRoom(m, 'plenary'); mt.groups.forEach((g) => setClosed(g, rest === '/close'))
        return json(res, 200, { id: m, title: mt.title, groups: mt.groups })
      }
      if (rest === '/versions' && req.method === 'POST') {
        if (r.role !== 'moderator') return err(res, 403, 'forbidden', 'Moderator only.')
        const body = JSON.parse((await readBody(req)) || '{}')
        const v = { id: 'v' + (mt.versions.length + 1), label: String(body.label ?? ''), created_at: new Date().toISOString(), summary: summary(m) }
        mt.versions.push(v); saveMeetings()
        return json(res, 201, { id: v.id, label: v.label, created_at: v.created_at })
      }
      if (rest === '/versions') return json(res, 200, { versions: mt.versions.map(({ id, label, created_at }) => ({ id, label, created_at })) })
      const sm = /^(?:\/versions\/([^/]+))?\/summary\.(json|md|html)$/.exec(rest)
      if (sm) {
        if (sm[1]) { const v = mt.versions.find((x) => x.id === sm[1]); if (!v) return err(res, 404, 'not_found', 'No such version.'); return renderSummary(res, v.summary, sm[2]) }
        return renderSummary(res, summary(m), sm[2])
      }
      return err(res, 404, 'not_found', 'No such route.')
    }
    // static files
    let file = path.join(distDir, path.normalize(p).replace(/^(\.\.[/\\])+/, ''))
    if (p === '/' || p.startsWith('/m/') || p === '/organize' || !fs.existsSync(file) || fs.statSync(file).isDirectory()) {
      if (p.startsWith('/assets/')) { res.writeHead(404); return res.end() }
      file = path.join(distDir, 'index.html')
    }
    const type = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript', '.css': 'text/css', '.svg': 'image/svg+xml', '.json': 'application/json' }[path.extname(file)] ?? 'application/octet-stream'
    res.writeHead(200, { 'content-type': type })
    res.end(fs.readFileSync(file))
  } catch (e) {
    console.error(e)
    err(res, 500, 'internal', 'Internal error.')
  }
})

// ---------- WebSocket ----------
const wss = new WebSocketServer({ noServer: true })
server.on('upgrade', (req, socket, head) => {
  const url = new URL(req.url, 'http://x')
  const mm = /^\/ws\/([^/]+)\/([^/]+)$/.exec(url.pathname)
  const refuse = (status, code) => { socket.end(`HTTP/1.1 ${status} ${code}\r\ncontent-type: application/json\r\nconnection: close\r\n\r\n{"error":{"code":"${code}","message":"${code}"}}`) }
  if (!mm) return refuse(404, 'not_found')
  const [, m, g] = mm
  if (!meetings[m]) return refuse(404, 'not_found')
  if (g !== 'plenary' && !meetings[m].groups.some((x) => x.id === g)) return refuse(404, 'not_found')
  const token = url.searchParams.get('token')
  const r = role(m, token)
  if (!r) return otherMeeting(token) ? refuse(403, 'forbidden') : refuse(401, 'unauthorized')
  wss.handleUpgrade(req, socket, head, (ws) => {
    const room = getRoom(m, g)
    if (g === 'plenary') for (const x of meetings[m].groups) getRoom(m, x.id), mergeIntoPlenary(m, x.id)
    const closed = meetings[m].groups.find((x) => x.id === g)?.closed
    const conn = { ws, write: canWrite(r, g), closedCheck: () => !!meetings[m].groups.find((x) => x.id === g)?.closed, ack: url.searchParams.get('ack') === '1', role: r.role, clients: new Set() }
    void closed
    room.conns.add(conn)
    ws.binaryType = 'arraybuffer'
    // sync step 1 + current awareness
    const enc = encoding.createEncoder()
    encoding.writeVarUint(enc, 0)
    syncProtocol.writeSyncStep1(enc, room.doc)
    send(conn, encoding.toUint8Array(enc))
    publishCounts(room)
    const states = [...room.awareness.getStates().keys()]
    if (states.length) {
      const e2 = encoding.createEncoder()
      encoding.writeVarUint(e2, 1)
      encoding.writeVarUint8Array(e2, awarenessProtocol.encodeAwarenessUpdate(room.awareness, states))
      send(conn, encoding.toUint8Array(e2))
    }
    ws.on('message', (data) => {
      try {
        const buf = new Uint8Array(data)
        const dec = decoding.createDecoder(buf)
        const type = decoding.readVarUint(dec)
        if (type === 0) {
          const st = decoding.readVarUint(dec)
          if (st === 0) {
            const sv = decoding.readVarUint8Array(dec)
            const out = encoding.createEncoder()
            encoding.writeVarUint(out, 0)
            encoding.writeVarUint(out, 1)
            encoding.writeVarUint8Array(out, Y.encodeStateAsUpdate(room.doc, sv))
            send(conn, encoding.toUint8Array(out))
          } else {
            const update = decoding.readVarUint8Array(dec)
            const before = Y.encodeStateVector(room.doc)
            if (!conn.write || conn.closedCheck()) {
              // would it change the doc?
              const probe = new Y.Doc(); Y.applyUpdate(probe, Y.encodeStateAsUpdate(room.doc)); Y.applyUpdate(probe, update)
              if (Buffer.compare(Buffer.from(Y.encodeStateVector(probe)), Buffer.from(before)) !== 0) {
                const out = encoding.createEncoder(); encoding.writeVarUint(out, 2); encoding.writeVarUint(out, 0); encoding.writeVarString(out, conn.write ? 'group closed' : 'permission denied')
                send(conn, encoding.toUint8Array(out))
              }
              return
            }
            Y.applyUpdate(room.doc, update, conn)
            if (conn.ack) send(conn, ackMsg(Y.encodeStateVector(room.doc)))
          }
        } else if (type === 1) {
          const upd = decoding.readVarUint8Array(dec)
          if (!conn.write) return
          awarenessProtocol.applyAwarenessUpdate(room.awareness, upd, conn)
          const d2 = decoding.createDecoder(upd)
          const n = decoding.readVarUint(d2)
          for (let i = 0; i < n; i++) { conn.clients.add(decoding.readVarUint(d2)); decoding.readVarUint(d2); decoding.readVarString(d2) }
          const out = encoding.createEncoder(); encoding.writeVarUint(out, 1); encoding.writeVarUint8Array(out, upd)
          const msg = encoding.toUint8Array(out)
          for (const c of room.conns) send(c, msg)
        } else if (type === 3) {
          const out = encoding.createEncoder(); encoding.writeVarUint(out, 1)
          encoding.writeVarUint8Array(out, awarenessProtocol.encodeAwarenessUpdate(room.awareness, [...room.awareness.getStates().keys()]))
          send(conn, encoding.toUint8Array(out))
        }
      } catch (e) {
        console.error('bad frame', e)
        ws.close(1002)
      }
    })
    ws.on('close', () => {
      room.conns.delete(conn)
      const gone = [...conn.clients].filter((c) => c !== 0 && room.awareness.meta.has(c))
      if (gone.length) {
        awarenessProtocol.removeAwarenessStates(room.awareness, gone, 'close')
        const out = encoding.createEncoder(); encoding.writeVarUint(out, 1)
        encoding.writeVarUint8Array(out, awarenessProtocol.encodeAwarenessUpdate(room.awareness, gone))
        const msg = encoding.toUint8Array(out)
        for (const c of room.conns) send(c, msg)
      }
      publishCounts(room)
    })
  })
})

const [host, port] = [addr.slice(0, addr.lastIndexOf(':')), Number(addr.slice(addr.lastIndexOf(':') + 1))]
server.listen(port, host, () => {
  console.log(`listening on http://${host}:${server.address().port}`)
})
const stop = () => {
  for (const r of rooms.values()) for (const c of r.conns) c.ws.close(1001)
  server.close()
  setTimeout(() => process.exit(0), 100)
}
process.on('SIGTERM', stop)
process.on('SIGINT', stop)
