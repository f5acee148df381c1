// plenary service worker (built by vite.config.ts from web-client/sw/sw.template.js; served at
// /sw.js with scope /). It keeps the page shell and every built asset, so that a reload while
// offline opens the page; the documents themselves come from IndexedDB (y-indexeddb).
// Never cached: /api/ and /ws/ (live data, capabilities), anything not GET, other origins.
const VERSION = "b8f01e449f20"
const ASSETS = ["/assets/api-D3wftUu5.js","/assets/console-ARKGXOQD.css","/assets/console-BQGm4_BA.js","/assets/groupdoc-CMIqilr2.js","/assets/index-B9sQHS0n.css","/assets/index-C6GLe8sd.js","/assets/joinlink-RFqO_8qK.js","/assets/organize-C4eFSYBU.css","/assets/organize-ChSwvHaB.js","/assets/participant-CPvTy9os.js","/assets/plenary-GT5QRsYn.js","/assets/projector-BDbCPI0h.js","/assets/projector-Cr4eiGsY.css","/assets/qr-BYaUcy6m.js","/assets/rapporteur-DDssV-s1.css","/assets/rapporteur-uNUdxtSQ.js","/assets/status-DF-nyA5C.js","/assets/textbinding-BqyCS5uT.js","/assets/y-indexeddb-BmLH21sa.js","/assets/yjs-sync-cFqSxkch.js"]
const CACHE = `plenary-shell-${VERSION}`

self.addEventListener('install', (event) => {
  event.waitUntil(
    caches
      .open(CACHE)
      .then((c) => c.addAll(['/', ...ASSETS]))
      .then(() => self.skipWaiting()),
  )
})

self.addEventListener('activate', (event) => {
  event.waitUntil(
    caches
      .keys()
      .then((keys) => Promise.all(keys.filter((k) => k.startsWith('plenary-shell-') && k !== CACHE).map((k) => caches.delete(k))))
      .then(() => self.clients.claim()),
  )
})

self.addEventListener('fetch', (event) => {
  const req = event.request
  if (req.method !== 'GET') return
  const url = new URL(req.url)
  if (url.origin !== self.location.origin) return
  if (url.pathname.startsWith('/api/') || url.pathname.startsWith('/ws/') || url.pathname === '/sw.js') return
  if (req.mode === 'navigate') {
    // the network first (a new build shows at once), the cached shell when it cannot be reached;
    // every app route serves the same index.html
    event.respondWith(
      fetch(req).catch(() => caches.open(CACHE).then((c) => c.match('/')).then((r) => r || Response.error())),
    )
    return
  }
  if (url.pathname.startsWith('/assets/')) {
    // hashed file names: a cached copy is always right
    event.respondWith(
      caches.open(CACHE).then((c) =>
        c.match(req).then(
          (hit) =>
            hit ||
            fetch(req).then((res) => {
              if (res.ok) c.put(req, res.clone())
              return res
            }),
        ),
      ),
    )
  }
})
