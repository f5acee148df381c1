import { defineConfig } from 'vite'

// Where `vite` (dev) and `vite preview` forward /api and /ws: a running `plenary serve`.
const target = process.env.PLENARY_URL ?? 'http://127.0.0.1:8080'
const proxy = {
  '/api': { target, changeOrigin: false },
  '/ws': { target: target.replace(/^http/, 'ws'), ws: true, changeOrigin: false },
}

export default defineConfig({
  base: '/',
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
