/*
 * hubbub demo room: everything here goes through the public SDK (window.PubSub
 * from /sdk/hubbub.js), exactly as a plugin would use it.
 *
 * Events of this room:
 *   reaction  { emoji, from }         floating emoji in every tab
 *   chat      { name, text, color }   the chat
 *   announce  { text }                what the curl panel publishes
 * and the presence of the session: the live count and who is here.
 */
(function () {
  'use strict';

  var MAX_FLOATERS = 60; /* keep the DOM small when someone holds the button down */
  var MAX_EVENT_ROWS = 60;
  var MAX_CHAT_ROWS = 200;
  var MAX_MEMBER_ROWS = 100; /* a large room shows its count and a sample */
  var EVENT_NAMES = ['reaction', 'chat', 'announce'];
  var COLORS = ['#7c5cff', '#20c4e8', '#ff5f8f', '#2fd47f', '#ffb02e', '#b36bff', '#ff7849', '#3d8bff'];

  var $ = function (id) { return document.getElementById(id); };
  var stateLabels = {
    idle: 'not connected',
    connecting: 'connecting…',
    open: 'live',
    reconnecting: 'reconnecting…',
    closed: 'disconnected',
  };

  function readToken() {
    var m = /(?:^|[#&])token=([^&]+)/.exec(location.hash);
    return m ? decodeURIComponent(m[1]) : '';
  }

  /* How the SDK sends the token: `#...&transport=protocol|query` overrides the
   * default, the subprotocol (never in a URL, and refusals come in band with
   * their code: docs/protocol.md section 2). */
  function readTransport() {
    var m = /(?:^|[#&])transport=(protocol|query)(?:&|$)/.exec(location.hash);
    return m ? m[1] : 'protocol';
  }

  /* What each connection error means for someone looking at the demo. */
  function connErrorText(err, state) {
    var fresh = ' `make run` prints a fresh link.';
    switch (err.code) {
      case 'token_expired': return 'This connection token has expired.' + fresh;
      case 'invalid_token':
      case 'missing_token': return 'The server does not accept this connection token.' + fresh;
      case 'token_revoked': return 'The tokens of this user were revoked.' + fresh;
      case 'origin_forbidden': return 'The server does not accept pages from ' + location.origin + ' (allowed_origins, docs/operations.md).';
      case 'shutting_down': return 'The server is restarting; trying again…';
      case 'connection_lost': return 'The connection dropped; reconnecting…';
      case 'connect_timeout': return 'The server did not answer in time; trying again…';
      case 'connection_refused':
        if (state === 'closed') return 'The server refused the connection.';
        return 'Cannot join the room: the server is unreachable, or refused the connection token' +
          ' (a browser cannot tell which). Trying again…';
      default: return err.message;
    }
  }

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text != null) e.textContent = text; /* never innerHTML: chat text is untrusted */
    return e;
  }

  function hashColor(s) {
    var h = 0;
    for (var i = 0; i < s.length; i++) h = (h * 31 + s.charCodeAt(i)) | 0;
    return COLORS[Math.abs(h) % COLORS.length];
  }

  function clock(ms) {
    var d = ms ? new Date(ms) : new Date();
    return d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit', hour12: false });
  }

  function toast(title, detail, isError) {
    var t = el('div', 'toast' + (isError ? ' error' : ''), title);
    if (detail) t.appendChild(el('small', null, detail));
    $('toasts').appendChild(t);
    setTimeout(function () { t.remove(); }, 5200);
  }

  function setBadge(state) {
    var b = $('state');
    b.dataset.state = state;
    b.querySelector('.badge-text').textContent = stateLabels[state] || state;
    if (state === 'open') $('conn-status').hidden = true;
  }

  /* The status line under the top bar: the code of the connection error and
   * what it means, until the room is live again. `data-final` once the client
   * has stopped (a refusal): nothing more will happen without a new link. */
  function showConnError(err) {
    var line = $('conn-status');
    var state = PubSub.state;
    line.dataset.code = err.code;
    if (state === 'closed') line.dataset.final = '';
    else delete line.dataset.final;
    line.querySelector('.conn-code').textContent = err.code;
    line.querySelector('.conn-text').textContent = connErrorText(err, state);
    line.hidden = false;
  }

  /* ---- no token: explain how to get one ------------------------------ */
  function showOnboarding() {
    $('no-token').hidden = false;
    setBadge('idle');
    var base = location.origin;
    $('mint-cmd').textContent =
      'curl -s -X POST ' + base + '/api/v1/connection_tokens \\\n' +
      '  -H "Authorization: Bearer $HUBBUB_TOKEN" \\\n' +
      '  -H "Content-Type: application/json" \\\n' +
      '  -d \'{"event_id":"' + uuid() + '","session_id":"' + uuid() + '","user_id":"alice"}\'';
    $('demo-url-example').textContent = base + '/demo#token=<token>';
  }

  /* The token's `sub` claim (the user id) names you in the chat until you rename yourself. */
  function tokenUser(token) {
    try {
      var part = token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
      var json = decodeURIComponent(escape(atob(part + '==='.slice((part.length + 3) % 4))));
      return JSON.parse(json).sub || '';
    } catch (e) {
      return '';
    }
  }

  function uuid() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    return '00000000-0000-4000-8000-000000000000';
  }

  /* ---- the room ------------------------------------------------------- */
  var me = { name: '', color: '' };
  var counts = {};
  var eventTotal = 0;

  function loadName(userId) {
    var saved = '';
    try { saved = localStorage.getItem('hubbub-demo-name') || ''; } catch (e) { /* private mode */ }
    if (!saved && userId) saved = String(userId).slice(0, 24);
    if (!saved) {
      var animals = ['otter', 'panda', 'falcon', 'koala', 'lynx', 'gecko', 'orca', 'yak', 'heron', 'fox'];
      saved = animals[Math.floor(Math.random() * animals.length)] + '-' + Math.floor(100 + Math.random() * 900);
    }
    me.name = saved;
    me.color = hashColor(saved);
    var input = $('chat-name');
    input.value = saved;
    input.addEventListener('change', function () {
      var v = input.value.trim().slice(0, 24);
      if (!v) { input.value = me.name; return; }
      me.name = v;
      me.color = hashColor(v);
      try { localStorage.setItem('hubbub-demo-name', v); } catch (e) { /* ignore */ }
    });
  }

  function currentScope() {
    var picked = document.querySelector('input[name="scope"]:checked');
    return picked ? picked.value : 'session';
  }

  function floatEmoji(emoji, from) {
    var sky = $('sky');
    var live = sky.querySelectorAll('.floater');
    if (live.length >= MAX_FLOATERS) live[0].remove();
    var f = el('div', 'floater', emoji);
    if (from) f.appendChild(el('small', null, from));
    f.style.left = (6 + Math.random() * 84) + '%';
    f.style.setProperty('--drift', Math.round(Math.random() * 120 - 60) + 'px');
    f.style.setProperty('--rot', Math.round(Math.random() * 50 - 25) + 'deg');
    f.style.setProperty('--dur', (2.4 + Math.random() * 1.4).toFixed(2) + 's');
    f.style.fontSize = Math.round(34 + Math.random() * 22) + 'px';
    f.addEventListener('animationend', function () {
      f.remove();
      if (!sky.querySelector('.floater')) sky.classList.remove('has-floaters');
    });
    sky.classList.add('has-floaters');
    sky.appendChild(f);
  }

  function bumpCount(emoji) {
    counts[emoji] = (counts[emoji] || 0) + 1;
    var btn = document.querySelector('.reactions button[data-emoji="' + emoji + '"]');
    if (!btn) return;
    btn.querySelector('em').textContent = String(counts[emoji]);
    btn.classList.remove('bump');
    void btn.offsetWidth; /* restart the animation */
    btn.classList.add('bump');
  }

  function logEvent(name, scope, data, sentAt) {
    var list = $('events');
    var empty = list.querySelector('.empty');
    if (empty) empty.remove();
    var li = el('li');
    li.dataset.event = name;
    li.appendChild(el('time', null, clock(sentAt)));
    li.appendChild(el('span', 'name', name));
    li.appendChild(el('span', 'pill ' + (scope || 'session'), scope || 'session'));
    var preview = '';
    try { preview = JSON.stringify(data); } catch (e) { preview = '?'; }
    var d = el('span', 'data', preview);
    d.title = preview;
    li.appendChild(d);
    list.insertBefore(li, list.firstChild);
    while (list.children.length > MAX_EVENT_ROWS) list.lastChild.remove();
    eventTotal++;
    $('event-count').textContent = String(eventTotal);
  }

  function addChat(msg, sentAt) {
    var list = $('messages');
    var name = String(msg.name || 'someone').slice(0, 24);
    var li = el('li', name === me.name ? 'mine' : '');
    var av = el('span', 'avatar', name.charAt(0).toUpperCase());
    av.style.background = /^#[0-9a-f]{6}$/i.test(msg.color || '') ? msg.color : hashColor(name);
    var bubble = el('div', 'bubble');
    bubble.appendChild(el('b', null, name));
    bubble.appendChild(el('time', null, clock(sentAt)));
    bubble.appendChild(el('p', null, String(msg.text || '').slice(0, 500)));
    li.appendChild(av);
    li.appendChild(bubble);
    list.appendChild(li);
    while (list.children.length > MAX_CHAT_ROWS) list.firstChild.remove();
    list.scrollTop = list.scrollHeight;
  }

  function renderCurl(welcome) {
    var room = welcome.room || {};
    var base = location.origin;
    var body = {
      scope: { type: 'session', event_id: room.event_id, session_id: room.session_id },
      payload: { event: { eventName: 'announce', data: { text: 'Hello from curl!' } } },
    };
    var cmd = 'curl -X POST ' + base + '/api/v1/pub_subs \\\n' +
      '  -H "Authorization: Bearer $HUBBUB_TOKEN" \\\n' +
      '  -H "Content-Type: application/json" \\\n' +
      "  -d '" + JSON.stringify(body) + "'";
    var pre = $('curl-cmd');
    pre.textContent = cmd;
    pre.dataset.command = cmd;
    $('meta-event').textContent = short(room.event_id);
    $('meta-event').title = room.event_id || '';
    $('meta-session').textContent = short(room.session_id);
    $('meta-session').title = room.session_id || '';
    $('meta-user').textContent = welcome.user_id || '?';
    $('room-meta').hidden = false;
    var scopes = welcome.scopes || ['session'];
    $('scope-picker').hidden = scopes.length < 2;
    var radios = document.querySelectorAll('input[name="scope"]');
    for (var i = 0; i < radios.length; i++) radios[i].parentNode.hidden = scopes.indexOf(radios[i].value) < 0;
  }

  /* The people card and the count in the top bar (PubSub.presence.subscribe). */
  function renderPresence(p) {
    $('here-count').textContent = String(p.count);
    $('here').hidden = false;
    $('presence-count').textContent = String(p.count);
    var list = $('members');
    while (list.firstChild) list.firstChild.remove();
    var mine = PubSub.welcome && PubSub.welcome.user_id;
    var shown = p.members.slice(0, MAX_MEMBER_ROWS);
    for (var i = 0; i < shown.length; i++) {
      var m = shown[i];
      var info = m.info && typeof m.info === 'object' ? m.info : {};
      var name = String(info.name || m.userId).slice(0, 32);
      var li = el('li', m.userId === mine ? 'me' : '');
      li.dataset.user = m.userId;
      var av = el('span', 'avatar', name.charAt(0).toUpperCase());
      av.style.background = hashColor(m.userId);
      li.appendChild(av);
      li.appendChild(el('span', 'name', name));
      if (m.userId === mine) li.appendChild(el('small', null, 'you'));
      list.appendChild(li);
    }
    if (!shown.length) list.appendChild(el('li', 'empty', 'Nobody yet.'));
    $('presence-note').textContent = shown.length < p.count
      ? 'Showing ' + shown.length + ' of ' + p.count + ': in a large room the list is a sample, the count is exact.'
      : 'Everyone with this room open, live: a tab that closes leaves within a second.';
  }

  function short(id) {
    return id ? id.slice(0, 8) + '…' : '?';
  }

  function copyCurl() {
    var cmd = $('curl-cmd').dataset.command || '';
    var done = function () {
      var b = $('copy-curl');
      b.textContent = 'Copied ✓';
      setTimeout(function () { b.textContent = 'Copy'; }, 1500);
    };
    if (navigator.clipboard && navigator.clipboard.writeText) {
      navigator.clipboard.writeText(cmd).then(done, function () { selectCurl(); });
    } else {
      selectCurl();
    }
  }

  function selectCurl() {
    var r = document.createRange();
    r.selectNodeContents($('curl-cmd'));
    var s = window.getSelection();
    s.removeAllRanges();
    s.addRange(r);
  }

  function start(token) {
    $('app').hidden = false;
    loadName(tokenUser(token));

    PubSub.onStateChange(setBadge);
    PubSub.on('welcome', renderCurl);
    PubSub.on('error', function (err) {
      /* Every failure arrives here, once. A request's (it names its event or
       * request) is a toast; the connection's goes to the status line, which
       * says why the room is not live: a refusal (token_expired...) stops the
       * client, anything else is being retried. */
      if (err.eventName || err.requestId || err.code === 'callback_error') {
        toast(err.code === 'scope_forbidden' ? 'Your token may not publish to that scope' : 'Error: ' + err.code, err.message, true);
      } else {
        showConnError(err);
      }
    });

    PubSub.subscribe('reaction', function (data, meta) {
      var emoji = String(data.emoji || '').slice(0, 16);
      if (!emoji) return;
      floatEmoji(emoji, data.from === me.name ? '' : String(data.from || '').slice(0, 24));
      bumpCount(emoji);
      logEvent('reaction', meta.scope, data, meta.sentAt);
    });
    PubSub.subscribe('chat', function (data, meta) {
      addChat(data, meta.sentAt);
      logEvent('chat', meta.scope, data, meta.sentAt);
    });
    PubSub.subscribe('announce', function (data, meta) {
      toast('📣 ' + String(data.text || 'announcement').slice(0, 200), 'published with curl · ' + meta.scope);
      logEvent('announce', meta.scope, data, meta.sentAt);
    });

    PubSub.presence.subscribe(renderPresence);

    $('reactions').addEventListener('click', function (ev) {
      var btn = ev.target.closest('button[data-emoji]');
      if (!btn) return;
      PubSub.publish('reaction', { data: { emoji: btn.dataset.emoji, from: me.name }, scope: currentScope() });
    });
    $('composer').addEventListener('submit', function (ev) {
      ev.preventDefault();
      var input = $('chat-text');
      var text = input.value.trim();
      if (!text) return;
      PubSub.publish('chat', { data: { name: me.name, text: text, color: me.color }, scope: currentScope() });
      input.value = '';
    });
    $('copy-curl').addEventListener('click', copyCurl);

    try {
      PubSub.connect({ url: location.origin, token: token, tokenTransport: readTransport() }).catch(function () {
        /* Gave up (a refusal): the 'error' listener has shown why. */
      });
    } catch (err) {
      showConnError(err); /* invalid_argument: e.g. a pasted token with spaces */
    }
    window.hubbubDemo = { PubSub: PubSub, events: EVENT_NAMES }; /* for the browser tests and curious people */
  }

  function boot() {
    if (typeof PubSub === 'undefined') {
      $('no-token').hidden = false;
      $('no-token').querySelector('h2').textContent = 'The SDK (/sdk/hubbub.js) did not load';
      return;
    }
    var token = readToken();
    if (!token) return showOnboarding();
    start(token);
  }

  /* A new token pasted into the address bar: start over with it. */
  window.addEventListener('hashchange', function () { location.reload(); });

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', boot);
  else boot();
})();
