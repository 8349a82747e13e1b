/* static: not written yet */
