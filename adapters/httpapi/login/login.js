// The token prompt of a server with --auth-token-file: POST /auth/login sets an
// HttpOnly cookie that the History page's requests (fetch and EventSource) carry.
'use strict';

(function () {
  const form = document.getElementById('login');
  const error = document.getElementById('error');

  // next is where to go back to: a path of this server only.
  function next() {
    const n = new URLSearchParams(location.search).get('next') || '/';
    return n.startsWith('/') && !n.startsWith('//') && !n.startsWith('/\\') ? n : '/';
  }

  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    error.hidden = true;
    try {
      const res = await fetch('auth/login', {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
        body: JSON.stringify({ token: document.getElementById('token').value }),
      });
      if (res.ok) {
        location.replace(next());
        return;
      }
      const body = await res.json().catch(() => ({}));
      error.textContent = body.error || ('Login failed: ' + res.status);
    } catch (e) {
      error.textContent = 'Login failed: ' + e.message;
    }
    error.hidden = false;
  });
}());
