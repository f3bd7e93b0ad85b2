// What the docs' plain HTML pages (error catalogue, getting started) share: escaping and the page frame.

export const escapeHtml = (s: string) => s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

/** A whole page: `title` is escaped here, `style` (CSS) and `body` (HTML) are the caller's. */
export function htmlPage(title: string, style: string, body: string): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)}</title>
<style>
${style.trim()}
</style>
</head>
<body>
${body.trim()}
</body>
</html>
`;
}
