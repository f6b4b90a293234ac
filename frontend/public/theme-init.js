// Runs before the first paint: a stored choice wins, otherwise the system preference.
;(function () {
  try {
    var stored = localStorage.getItem('theme')
    var dark = stored ? stored === 'dark' : window.matchMedia('(prefers-color-scheme: dark)').matches
    document.documentElement.classList.toggle('dark', dark)
  } catch (e) {
    /* storage blocked: light theme */
  }
})()
