// Keyboard shortcuts on the rating page: 1–5 trust, y/n/u pointing, → or Enter save, ← previous.
// The form posts once: a second click (or key) while it is being sent does nothing.
(function () {
  var form = document.getElementById('rating');
  if (!form) return;
  var sent = false;
  var hint = document.getElementById('hint');
  function submit() {
    if (sent) return;
    if (!form.querySelector('input[name="trust"]:checked')) {
      hint.textContent = 'Choose a trust rating (1–5) first.';
      return;
    }
    sent = true;
    document.getElementById('save').disabled = true;
    form.submit();
  }
  form.addEventListener('submit', function (event) {
    event.preventDefault();
    submit();
  });
  document.addEventListener('keydown', function (event) {
    if (event.target.tagName === 'TEXTAREA' || event.ctrlKey || event.metaKey || event.altKey) return;
    var key = event.key.toLowerCase();
    if (/^[1-5]$/.test(key)) {
      document.getElementById('trust-' + key).checked = true;
      hint.textContent = '';
    } else if (key === 'y' || key === 'n' || key === 'u') {
      document.getElementById('points-' + {y: 'yes', n: 'no', u: 'unsure'}[key]).checked = true;
    } else if (key === 'arrowright' || key === 'enter') {
      submit();
    } else if (key === 'arrowleft') {
      var previous = document.getElementById('previous');
      if (previous) window.location.href = previous.href;
    } else {
      return;
    }
    event.preventDefault();
  });
})();
