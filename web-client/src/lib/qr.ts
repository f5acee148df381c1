import QRCode from 'qrcode'

/** An <img> with the QR code of `text` (SVG data URL: crisp at any size, prints well). */
export async function qrImage(text: string, alt: string, size = 220): Promise<HTMLImageElement> {
  const svg = await QRCode.toString(text, { type: 'svg', errorCorrectionLevel: 'M', margin: 2, color: { dark: '#000000', light: '#ffffff' } })
  const img = document.createElement('img')
  img.src = 'data:image/svg+xml;charset=utf-8,' + encodeURIComponent(svg)
  img.alt = alt
  img.width = size
  img.height = size
  img.className = 'qr'
  return img
}
