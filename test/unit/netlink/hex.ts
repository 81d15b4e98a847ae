/** Bytes written by hand: hex pairs, whitespace ignored, `//` comments to the end of the line. */
export function hex(text: string): Buffer {
  const digits = text
    .split('\n')
    .map((l) => l.replace(/\/\/.*$/, ''))
    .join('')
    .replace(/\s+/g, '');
  if (!/^([0-9a-f]{2})*$/i.test(digits)) throw new Error(`bad hex: ${digits}`);
  return Buffer.from(digits, 'hex');
}
