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
  },
  server: { proxy },
  preview: { proxy },
})
