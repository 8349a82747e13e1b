/* router: not written yet */
