import { API_PATHS, OIDC_RETURN_TO_PARAM } from '@trellis/proto';
import { type Answer, CookieBrowser } from './cookie-browser';

export interface OidcFlowResult {
  browser: CookieBrowser;
  /** Every answer from the broker's start to the last redirect back to it. */
  answers: Answer[];
  /** The provider's redirect to the broker's callback (its URL carries code and state). */
  callbackUrl: string | undefined;
  /** The broker's answer to the callback: where it sends the browser. */
  landing: string | undefined;
}

/**
 * A browser's whole OIDC sign-in: the broker's start, the provider's login page (the login name
 * picks the provider's account; any password), and back through the broker's callback. `tamper`
 * may change the callback URL before the browser follows it.
 */
export async function oidcSignIn(
  brokerUrl: string,
  ca: Buffer,
  login: string,
  options: {
    returnTo?: string;
    tamper?: (callback: URL) => void;
    /** Follows the callback instead of the browser that signed in (a stolen callback URL). */
    callbackBrowser?: CookieBrowser;
  } = {},
): Promise<OidcFlowResult> {
  const browser = new CookieBrowser(ca);
  const start = new URL(API_PATHS.oidcStart, brokerUrl);
  if (options.returnTo !== undefined) start.searchParams.set(OIDC_RETURN_TO_PARAM, options.returnTo);
  const answers = await browser.follow('GET', start.toString());
  const page = answers.at(-1)!;
  const action = /<form[^>]*action="([^"]+)"/.exec(page.text)?.[1];
  if (page.status !== 200 || !action) return { browser, answers, callbackUrl: undefined, landing: undefined };
  // The provider's login form; its redirects go up to (not into) the broker's callback.
  const submitted = await browser.send('POST', new URL(action, page.url).toString(), {
    prompt: 'login',
    login,
    password: 'any password',
  });
  answers.push(submitted);
  let next = submitted;
  while (next.headers.location) {
    const url = new URL(next.headers.location, next.url);
    if (url.pathname === API_PATHS.oidcCallback) {
      options.tamper?.(url);
      const back = await (options.callbackBrowser ?? browser).send('GET', url.toString());
      answers.push(back);
      return { browser, answers, callbackUrl: url.toString(), landing: back.headers.location };
    }
    next = await browser.send('GET', url.toString());
    answers.push(next);
  }
  return { browser, answers, callbackUrl: undefined, landing: undefined };
}
