/// <reference types="vite/client" />
import './styles.css'
import { parseRoute } from './lib/token'
import { h, mount } from './lib/dom'

// Theme and text size are per-device preferences, applied before any view renders.
const root = document.documentElement
try {
  const theme = localStorage.getItem('plenary-theme')
  root.dataset.theme = theme ?? (matchMedia('(prefers-color-scheme: dark)').matches ? 'dark' : 'light')
  if (localStorage.getItem('plenary-text') === 'large') root.dataset.text = 'large'
} catch {
  root.dataset.theme = 'light'
}

const route = parseRoute(location.pathname)

// The service worker keeps the page shell and assets so that a reload while offline still opens
// the page (documents come from IndexedDB). Not in dev (vite serves sources, no /sw.js).
if ('serviceWorker' in navigator && !import.meta.env.DEV) {
  navigator.serviceWorker.register('/sw.js', { scope: '/' }).catch((e) => console.warn('service worker not registered', e))
}

async function start() {
  switch (route.view) {
    case 'organize':
      return (await import('./views/organize')).default()
    case 'rapporteur':
      return (await import('./views/rapporteur')).default(route.meeting!, route.group!)
    case 'console':
      return (await import('./views/console')).default(route.meeting!)
    case 'projector':
      return (await import('./views/projector')).default(route.meeting!)
    case 'participant':
      return (await import('./views/participant')).default(route.meeting!)
    case 'home':
      document.title = 'plenary'
      mount(
        h('h1', null, 'plenary'),
        h('p', null, 'Live notes and conclusions for meetings split into working groups.'),
        h('p', null, 'Open the link you were given by the organizer. Links look like ', h('code', null, '/m/…#token=…'), '.'),
        h('p', null, h('a', { href: '/organize' }, 'Organize a meeting')),
      )
      return
    default:
      document.title = 'Not found — plenary'
      mount(h('h1', null, 'Page not found'), h('p', null, h('a', { href: '/' }, 'Back to the start page')))
  }
}

start().catch((e) => {
  console.error(e)
  mount(h('h1', null, 'Something went wrong'), h('p', { class: 'error', role: 'alert' }, String(e instanceof Error ? e.message : e)), h('p', null, 'Reload the page to try again.'))
})
