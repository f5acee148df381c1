import { defineConfig, type Plugin } from 'vite'
import { readFileSync } from 'node:fs'
import { createHash } from 'node:crypto'

// Emits /sw.js (the service worker, sw/sw.template.js) with the list of built files to keep
// offline and a version derived from them, so that each new build replaces the old cache.
function serviceWorker(): Plugin {
  return {
    name: 'plenary-sw',
    apply: 'build',
    generateBundle(_opts, bundle) {
      const files = Object.keys(bundle)
        .filter((f) => f.startsWith('assets/'))
        .sort()
        .map((f) => '/' + f)
      const version = createHash('sha256').update(files.join('\n')).digest('hex').slice(0, 12)
      const src = readFileSync(new URL('./sw/sw.template.js', import.meta.url), 'utf8')
        .replace('__VERSION__', JSON.stringify(version))
        .replace('__ASSETS__', JSON.stringify(files))
      this.emitFile({ type: 'asset', fileName: 'sw.js', source: src })
    },
  }
}

// Where `vite` (dev) and `vite preview` forward /api and /ws: a running `plenary serve`.
const target = process.env.PLENARY_URL ?? 'http://127.0.0.1:8080'
const proxy = {
  '/api': { target, changeOrigin: false },
  '/ws': { target: target.replace(/^http/, 'ws'), ws: true, changeOrigin: false },
}

export default defineConfig({
  base: '/',
  plugins: [serviceWorker()],
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    manifest: true,
    sourcemap: false,
    target: 'es2022',
    // Inline nothing: keeps file names/hashes stable and the CSP simple.
    assetsInlineLimit: 0,
    chunkSizeWarningLimit: 600,
    rolldownOptions: {
      output: {
        // readable chunk names in the size report: the sync stack shared by every live view
        codeSplitting: {
          groups: [{ name: 'yjs-sync', test: /node_modules[\\/](yjs|lib0|y-protocols|y-websocket)[\\/]/ }],
        },
      },
    },
  },
  server: { proxy },
  preview: { proxy },
})
