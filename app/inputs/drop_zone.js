// The Analyze page's drop zone (app/tile_drop.py). The browser reads every dropped or chosen file itself and
// sends them together in one message, so a few hundred tiles arrive at once instead of one request each.
// Files that must not be sent (over a size limit, not a tile type) go as a name and size only: the server
// names each of them and the reason.
export default function (component) {
  const { parentElement, setTriggerValue } = component;
  const zone = parentElement.querySelector(".tile-drop");
  const input = parentElement.querySelector("input[type=file]");
  const browse = parentElement.querySelector("button");
  const status = parentElement.querySelector(".tile-drop-status");
  const limits = JSON.parse(zone.dataset.limits);
  const suffix = (name) => (name.match(/\.[^./]+$/) || [""])[0].toLowerCase();

  input.accept = limits.accept.join(",");

  const readBase64 = (file) => new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(reader.result.slice(reader.result.indexOf(",") + 1));
    reader.onerror = () => reject(reader.error);
    reader.readAsDataURL(file);
  });

  // Folders dropped from the desktop: every file below them, with its path inside the folder.
  const readEntries = (dir) => new Promise((resolve, reject) => dir.readEntries(resolve, reject));
  async function walk(entry, out) {
    if (entry.isFile) {
      out.push(await new Promise((resolve, reject) => entry.file(
        (f) => resolve({ file: f, path: entry.fullPath.replace(/^\//, "") }), reject)));
    } else if (entry.isDirectory) {
      const reader = entry.createReader();
      for (let batch = await readEntries(reader); batch.length; batch = await readEntries(reader)) {
        for (const child of batch) await walk(child, out);
      }
    }
  }

  async function send(items) {
    if (!items.length) return;
    zone.classList.add("busy");
    status.textContent = `Reading ${items.length} file(s)…`;
    let total = 0;
    try {
      const files = await Promise.all(items.map(async ({ file, path }) => {
        const entry = { name: path || file.name, size: file.size, data: null, reason: null };
        const ext = suffix(file.name);
        const cap = ext === ".zip" ? limits.maxArchiveBytes : limits.maxFileBytes;
        if (!limits.accept.includes(ext)) entry.reason = "type";
        else if (file.size > cap) entry.reason = "size";
        else if (total + file.size > limits.maxTotalBytes) entry.reason = "total";
        if (entry.reason) return entry;
        total += file.size;  // counted before the first await: files are budgeted in the order dropped
        try {
          entry.data = await readBase64(file);
        } catch (err) {
          entry.reason = "unreadable";
        }
        return entry;
      }));
      setTriggerValue("dropped", { files });
      status.textContent = "";
    } catch (err) {
      status.textContent = `The dropped files could not be read (${err}); nothing was sent.`;
    } finally {
      zone.classList.remove("busy");
    }
  }

  browse.onclick = () => input.click();
  input.onchange = () => {
    const picked = [...input.files].map((file) => ({ file, path: "" }));
    input.value = "";  // choosing the same files again is a new drop
    send(picked);
  };
  zone.ondragover = (e) => { e.preventDefault(); zone.classList.add("over"); };
  zone.ondragleave = () => zone.classList.remove("over");
  zone.ondrop = async (e) => {
    e.preventDefault();
    zone.classList.remove("over");
    // Entries must be taken before the first await: the browser empties the drop's data afterwards.
    const entries = [...e.dataTransfer.items].map((i) => i.webkitGetAsEntry && i.webkitGetAsEntry());
    const files = [...e.dataTransfer.files].map((file) => ({ file, path: "" }));
    if (!entries.length || !entries.every(Boolean)) return send(files);
    const out = [];
    try {
      for (const entry of entries) await walk(entry, out);
    } catch (err) {
      status.textContent = `The dropped folder could not be read (${err}); nothing was sent.`;
      return;
    }
    send(out);
  };
  // a drop before this point would be the browser's own (open the file), not ours: say when the zone takes one
  zone.dataset.ready = "true";
}
