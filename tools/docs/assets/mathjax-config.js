// MathJax 2.7 with its combined TeX-AMS-MML_HTMLorMML-full configuration (vendored from the jupyter-server-mathjax wheel into assets/mathjax/ by tools/docs/hooks.py: no CDN).
// pymdownx.arithmatex (generic mode) wraps the maths in <span|div class="arithmatex">\( .. \)</span>; only those are typeset.
window.MathJax = {
  tex2jax: {inlineMath: [["\\(", "\\)"]], displayMath: [["\\[", "\\]"]], processEscapes: false,
            processEnvironments: false, processClass: "arithmatex", ignoreClass: ".*|"},
  "HTML-CSS": {availableFonts: [], imageFont: null, preferredFont: null, webFont: "STIX-Web", linebreaks: {automatic: true}},
  showMathMenu: false,
  messageStyle: "none",
  AuthorInit: function () {
    MathJax.Hub.Register.StartupHook("End", function () { document.body.setAttribute("data-math", "typeset"); });
  }
};
