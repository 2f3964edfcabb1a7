// The passkey pages' glue: a form marked data-webauthn="register" or "authenticate" carries the
// server's options in data-options; its [data-webauthn-start] button runs the ceremony with
// @simplewebauthn/browser and posts the answer in the hidden "credential" field (or the field
// named by data-credential-field).
(function () {
  'use strict';
  var forms = document.querySelectorAll('form[data-webauthn]');
  Array.prototype.forEach.call(forms, function (form) {
    var button = form.querySelector('[data-webauthn-start]');
    var status = form.querySelector('[data-webauthn-status]');
    var options = JSON.parse(form.getAttribute('data-options'));
    var register = form.getAttribute('data-webauthn') === 'register';
    var running = false;
    if (!window.PublicKeyCredential || !window.SimpleWebAuthnBrowser) {
      if (status) status.textContent = 'This browser cannot use passkeys.';
      if (button) button.disabled = true;
      return;
    }
    function run() {
      if (running) return;
      running = true;
      if (status) status.textContent = '';
      var ceremony = register
        ? SimpleWebAuthnBrowser.startRegistration({ optionsJSON: options })
        : SimpleWebAuthnBrowser.startAuthentication({ optionsJSON: options });
      ceremony.then(function (answer) {
        form.elements[form.getAttribute('data-credential-field') || 'credential'].value = JSON.stringify(answer);
        form.submit();
      }, function (error) {
        running = false;
        if (status) status.textContent = error && error.name === 'NotAllowedError'
          ? 'The passkey request was cancelled or timed out. Try again.'
          : 'The passkey could not be used. Try again, or use another way.';
      });
    }
    if (button) button.addEventListener('click', run);
    if (form.hasAttribute('data-autostart')) run();
  });
})();
