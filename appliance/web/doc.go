// Package web serves the Anya Edge setup page, status page and the JSON API behind them.
//
// The box has no screen: a person reaches it from a phone or laptop on the local network,
// sets an admin password once, and afterwards logs in to see the state of the box, to reboot
// or power it off, and to use the box's Bitcoin wallet. Everything the pages do is also
// available as JSON under /api/. The pages are plain server-rendered HTML with one small
// script; every asset (style sheet, script, icon) is embedded in the binary, so the page works on a network without internet
// access and loads nothing from third parties.
//
// # Security model
//
// The box is reached over plain HTTP on the local network, so the design assumes that other
// devices on that network and web sites open in the same browser are hostile, and keeps each
// of them to what it can do without the password.
//
//   - First use. Until an admin password is stored, every page redirects to /setup and every
//     API route except POST /api/setup answers 409. Setup succeeds exactly once: the check
//     and the write happen in one bbolt transaction. Whoever reaches a new box first owns it;
//     that is the usual trade-off of a box without a display, and it is why the first page a
//     person sees asks for the password.
//   - Password. Stored only as an Argon2id hash (t=2, m=19 MiB, p=1, the OWASP minimum that
//     fits the box's memory) with a random salt and its parameters in a versioned record, and
//     compared in constant time. At most two hashes are computed at once, so a burst of login
//     attempts cannot exhaust the memory of the box. The password is never logged.
//   - Guessing. Wrong passwords are counted per client address (the connection's address,
//     never X-Forwarded-For; IPv6 clients per /64). After five, each further attempt must wait
//     twice as long as the one before, up to fifteen minutes, and is answered 429 with
//     Retry-After meanwhile, even when the password is right. A success clears the count. The
//     table is bounded and forgets idle entries.
//   - Sessions. A login creates a random 32-byte session id, sent in the HttpOnly,
//     SameSite=Strict cookie anya_session (Secure when served over TLS). bbolt keeps only the
//     SHA-256 of the id, so a copy of the database does not yield a usable cookie. A session
//     ends after 12 hours without use, 7 days after login, or at logout. Sessions live in
//     bbolt and survive restarts of anyad.
//   - Authorization. Every route is registered through one helper that records it in
//     [Server.Routes] and wraps it with the guard for its kind, so a route cannot exist
//     without being listed and guarded. Only the login routes, the static assets and
//     /healthz are reachable without a session; the tests fail if that list grows.
//   - Cross-site requests. Every state-changing request must come from the same origin
//     (Sec-Fetch-Site or Origin, checked by [net/http.CrossOriginProtection]); this covers
//     the login and setup forms, which have no session yet. A request with a session must
//     also carry the session's random CSRF token: the form field "csrf" on pages, the
//     X-CSRF-Token header in the API (GET /api/session returns it).
//   - Browser hardening. Every response carries a Content-Security-Policy that allows only
//     the box's own resources and no inline script or style, X-Frame-Options DENY,
//     X-Content-Type-Options nosniff and Referrer-Policy same-origin. Pages and API answers
//     are never cached. Request bodies are limited to 64 KiB, 2 MiB for the routes that take
//     a PSBT.
//
// # Wallet
//
// When [Config.Wallet] is set (the box's *hsm.Custody, seen through the [Wallet] interface),
// setup has a second, skippable step: create a wallet (12 or 24 words, shown once with a
// warning, then three words at random positions typed back) or restore one (its words and
// an optional BIP39 passphrase), then protect it with what the box offers: its TPM, a
// YubiKey (PIN) or a passphrase, with a recovery passphrase of at least 12 characters for
// the devices. The status page gets a Wallet card (unlock, recovery after a changed boot,
// lock, change of protection, the account descriptors, the last audit records and a check
// of their chain) and /wallet/sign reviews a PSBT before signing it. Everything is also in
// the API under /api/wallet; a box without a wallet answers 404 there and its pages do not
// mention it. The same rules apply as for every route: login, same origin, CSRF token.
//
//   - Secrets. The server only hands the mnemonic, passphrases and PINs to the custody: they
//     are never logged, never repeated in an error (a wrong word is named by its position)
//     and never put back in a form after a mistake. Byte copies are zeroed after use; Go
//     strings (form values, JSON fields) cannot be, and are dropped.
//   - The mnemonic being set up through the pages lives only in memory, bound to the session
//     that created or entered it, for at most 15 minutes; it is forgotten when the wallet is
//     set up, on cancel and at logout.
//   - Guessing. A wrong wallet passphrase, PIN or recovery passphrase counts in the same
//     per-client limit as a wrong admin password.
//   - Errors. 400 bad input (with the message of package keys or sign), 401 wrong passphrase
//     or PIN, 409 no wallet, wallet exists, wallet locked or boot state changed, 422 refused
//     by the signing policy (with the violations), 423 YubiKey PIN blocked, 429 too many
//     wrong attempts, 503 device missing.
//
// # Bitcoin node: the wallet's own pages
//
// When [Config.Node] is set (appliance/services' wallet service of package node/wallet and
// the chain backend of package node/backend, seen through the [Node] and [NodeWallet]
// interfaces), every page gets a navigation bar (Box, Wallet, Receive, Send, History) and
// these pages, each mirrored in the API:
//
//   - /node (GET /api/node): the dashboard. Balance (confirmed, unconfirmed), sync state
//     and progress (the wallet's block against the backend's tip, headers, the state and
//     since when, the backend's error), the light client's peers, and the fee estimates of
//     1, 6 and 144 blocks with each source's answer (FeeEstimate.Others) side by side. Its
//     live part (#node-live) follows the sync: app.js fetches the page again every 5 s
//     while it is visible and swaps that part in, so the page and its updates come from one
//     template and no script is inline.
//   - /node/backend (GET, POST /api/node/backend): the chain backend, "my own node over
//     RPC" (host, user, password or cookie file, the TLS certificate pasted, or plain HTTP
//     with a warning) or the built-in light client (peers; none: the DNS seeds). Saving
//     validates (errors next to the fields), opens the backend and checks it (20 s, 10 s
//     for the light client) with a sentence for the owner next to the field concerned (the
//     host for a node that does not answer, the password, the certificate) or above the
//     form (wrong network). Only a working backend is saved, unless the owner chooses "Save
//     anyway" (the settings wait in memory for that, bound to the session); a node still
//     syncing counts as working. The backend is then handed to the wallet
//     ([Node.UseBackend]). The form never shows the saved password: an empty field keeps
//     it, and only for the same host and user, so that a changed host is never sent the
//     saved password without the owner typing it. It is step 3 of the first setup, after
//     the wallet, and can be skipped.
//   - /node/receive (POST /api/node/address): an address, its BIP21 URI (with an optional
//     amount in BTC and label, which regenerate URI and code) and its QR code. The address
//     handed to a session is kept for it (30 minutes), so reloading or changing the amount
//     does not use up addresses; "New address" (POST) asks the wallet for the next one.
//     The QR code is an inline SVG drawn on the server: a path of the dark modules, no
//     script, no style attribute, no extra request. It is made with rsc.io/qr (v0.2.0): pure
//     Go, no dependencies, small, and it only encodes, which is all the box needs. The tests
//     read the code back with gozxing (a Go port of ZXing) and compare it with the URI.
//   - /node/send (POST /api/node/propose): address, amount with its unit chosen explicitly
//     (BTC with up to 8 decimals, or whole satoshis; parsed without floating point), "send
//     everything", a confirmation target with its fee rate prefilled (and changed by
//     app.js with the target, unless the owner typed one), and under "Advanced" an absolute
//     locktime or a relative lock in blocks. The wallet's proposal is shown on a review
//     screen: each output with its amount, the change marked, the fee and fee rate, what
//     leaves the wallet, the coins spent and the locktime. The wallet's refusals appear in
//     plain words next to the field they concern: an invalid address or one of another
//     network at the address, dust and insufficient funds at the amount, a fee rate below
//     the relay minimum at the fee rate.
//   - POST /node/confirm (POST /api/node/send): signs, finalizes and broadcasts a proposal
//     reviewed in the same session, once, and shows its txid. A session that logged in
//     less than 15 minutes ago confirms with its CSRF token alone; an older one must type
//     the admin password again (counted against the same guessing limits as the login), so
//     that a forgotten open session or a stolen cookie does not move coins. The send goes
//     on if the browser goes away (1 minute at most). A proposal that expired, or a
//     timelock not passed yet, leads back to the filled-in form; a locked wallet, the
//     signing policy (with its reasons) or a node's rejection keep the review with the
//     reason.
//   - /node/history (GET /api/node/history): newest first, amount in or out, confirmations
//     and fee; "Bump fee" (RBF) for replaceable entries and "Speed up with a child (CPFP)"
//     for the others that can be, each a form with a rate prefilled (/node/bump,
//     /node/cpfp) leading to the same review and confirmation; replaced transactions are
//     struck out with a link to their replacement.
//
// A box without a node answers 404 on these routes. Without a wallet set up they say so and
// link to the setup; the backend can be chosen before the wallet exists. Errors of the API:
// 400 bad input (with "fields", keyed like the form's fields), 401 admin password needed,
// 404 unknown transaction, 409 no wallet, no backend, not in sync, locked, already
// confirmed, not replaceable or expired, 410 unknown proposal, 422 insufficient funds, a
// refused check, the signing policy or the network's rejection, 503 backend down.
package web
