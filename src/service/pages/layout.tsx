/** @jsxRuntime automatic */
/** @jsxImportSource hono/jsx */
/** The pages' frame: server-rendered, no front-end build, readable on a phone, refreshing itself when asked. */
import type { Child } from "hono/jsx";

const STYLE = `
body{font:15px/1.45 system-ui,sans-serif;margin:0;color:#1d2330;background:#f6f7f9}
header{background:#1d2330;color:#fff;padding:.7rem 1rem;display:flex;justify-content:space-between;align-items:center}
header a{color:#fff;text-decoration:none;font-weight:600}
main{padding:1rem;max-width:60rem;margin:auto}
table{border-collapse:collapse;width:100%;background:#fff;margin:.5rem 0 1.2rem}
th,td{padding:.45rem .6rem;border-bottom:1px solid #e3e6eb;text-align:left;vertical-align:top}
th{font-size:.8rem;text-transform:uppercase;color:#5b6475}
.state{display:inline-block;padding:.1rem .5rem;border-radius:1rem;font-weight:600;font-size:.85rem}
.protected{background:#d8f5df;color:#13602a}.degraded,.failing_over,.maintenance,.awaiting_protection{background:#fff1cc;color:#7a5400}
.solo,.fenced_node_present,.reprotecting,.both_down,.needs_operator,.down{background:#fddcdc;color:#8a1515}
tr.stale td{color:#9aa1ad;font-style:italic}
tr.failing td{color:#8a1515;font-weight:600}
form.login{background:#fff;padding:1.2rem;max-width:24rem;margin:2rem auto;border:1px solid #e3e6eb}
input,button{font:inherit;padding:.45rem;width:100%;box-sizing:border-box;margin:.3rem 0}
.note{color:#5b6475;font-size:.85rem}.error{color:#8a1515}
.banner{background:#fddcdc;margin:0;padding:.6rem 1rem;font-weight:600}
@media (max-width:600px){.wide{display:none}}
`;

export function Page(props: { title: string; refresh?: number; loggedIn?: boolean; children: Child }) {
  const asOf = `${new Date().toISOString().slice(0, 19).replace("T", " ")} UTC`;
  return (
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        {props.refresh ? (
          <noscript>
            <meta http-equiv="refresh" content={String(props.refresh)} />
          </noscript>
        ) : null}
        <title>{props.title} · colo-arbiter</title>
        <style>{STYLE}</style>
        {props.refresh ? <script src="/refresh.js" defer /> : null}
      </head>
      <body data-refresh={props.refresh ? String(props.refresh) : undefined}>
        <header>
          <a href="/">colo-arbiter</a>
          {props.loggedIn ? (
            <form method="post" action="/logout" style="margin:0">
              <button type="submit" style="width:auto;margin:0">Log out</button>
            </form>
          ) : (
            <a href="/api">API</a>
          )}
        </header>
        <p id="refresh-error" class="error banner" role="status" hidden />
        <main data-as-of={asOf} data-title={props.title}>
          {props.children}
          {props.refresh ? (
            <p class="note">
              As of {asOf}, refreshed every {props.refresh} s.
            </p>
          ) : null}
        </main>
      </body>
    </html>
  );
}

export function State(props: { state: string }) {
  return <span class={`state ${props.state}`}>{props.state.replace(/_/g, " ")}</span>;
}
