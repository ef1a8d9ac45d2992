import { DEFAULT_LOCAL_UI_TOKEN_FILE } from '@trellis/proto';
import {
  app,
  BrowserWindow,
  Menu,
  type MenuItemConstructorOptions,
  nativeImage,
  shell,
  Tray,
} from 'electron';
import { iconBitmap } from './icon';
import { LocalUiClient } from './local-ui-client';
import { type TrayMenuEntry, type TrayView, trayView } from './menu-model';

/**
 * The tray app's Electron main process, kept thin: it polls the daemon's status through the local
 * UI API, draws what `trayView` says, and shows the local UI (served by trellisd) in a window.
 */
const POLL_MS = 2000;
const client = new LocalUiClient(process.env.TRELLIS_UI_TOKEN_FILE ?? DEFAULT_LOCAL_UI_TOKEN_FILE);
let tray: Tray | null = null;
let window: BrowserWindow | null = null;
let uiOrigin: string | null = null;

/** Only web addresses leave the app, and only for the user's own browser. */
function openExternal(url: string): void {
  if (/^https?:\/\//.test(url)) void shell.openExternal(url);
}

/** Shows the UI, loaded afresh with the current token (trellisd may have restarted meanwhile). */
async function openWindow(): Promise<void> {
  const url = await client.pageUrl();
  uiOrigin = new URL(url).origin;
  if (window && !window.isDestroyed()) {
    window.show();
    window.focus();
    await window.loadURL(url);
    return;
  }
  const w = new BrowserWindow({
    width: 560,
    height: 680,
    title: 'Trellis',
    webPreferences: { contextIsolation: true, sandbox: true, nodeIntegration: false },
  });
  window = w;
  // Links with target=_blank (the sign-in page) go to the browser; nothing else opens a window.
  w.webContents.setWindowOpenHandler(({ url: target }) => {
    openExternal(target);
    return { action: 'deny' };
  });
  w.webContents.on('will-navigate', (ev, target) => {
    if (new URL(target).origin !== uiOrigin) {
      ev.preventDefault();
      openExternal(target);
    }
  });
  w.on('closed', () => {
    window = null;
  });
  await w.loadURL(url);
}

async function run(action: TrayMenuEntry & { kind: 'item' }): Promise<void> {
  switch (action.action) {
    case 'open-window':
    case 'sign-in': // the broker URL is entered in the UI's sign-in form
      return openWindow();
    case 'open-url':
      if (action.url) openExternal(action.url);
      return;
    case 'connect':
      await client.up({});
      return;
    case 'disconnect':
      await client.down();
      return;
    case 'quit':
      app.quit();
  }
}

function draw(view: TrayView): void {
  if (!tray) return;
  tray.setImage(nativeImage.createFromBitmap(iconBitmap(view.tone), { width: 16, height: 16 }));
  tray.setToolTip(view.tooltip);
  const items = view.menu.map((entry): MenuItemConstructorOptions => {
    if (entry.kind === 'separator') return { type: 'separator' };
    if (entry.kind === 'status') return { label: entry.label, enabled: false };
    return { label: entry.label, click: () => void run(entry).then(refresh, showFailure) };
  });
  tray.setContextMenu(Menu.buildFromTemplate(items));
}

function showFailure(err: Error): void {
  draw(trayView(null, err.message));
}

async function refresh(): Promise<void> {
  try {
    draw(trayView(await client.status()));
  } catch (err) {
    showFailure(err as Error);
  }
}

if (!app.requestSingleInstanceLock()) {
  app.quit();
} else {
  app.on('second-instance', () => void openWindow().catch(showFailure));
  // A tray app lives on with no window open.
  app.on('window-all-closed', () => undefined);
  void app.whenReady().then(() => {
    tray = new Tray(nativeImage.createFromBitmap(iconBitmap('off'), { width: 16, height: 16 }));
    tray.on('click', () => void openWindow().catch(showFailure));
    void refresh();
    setInterval(() => void refresh(), POLL_MS);
  });
}
