# The Debian package (scripts/package: `cpack -G DEB` in build/ gives
# build/conduit_<version>-1_<arch>.deb). It installs:
#   /usr/bin/conduit                        the router and its CLI (stripped)
#   /lib/systemd/system/conduit.service     the hardened unit (systemd/conduit.service)
#   /usr/lib/sysusers.d/conduit.conf        user and group conduit (systemd/conduit.sysusers)
#   /etc/conduit/conduit.yaml, rules.yaml   configuration, conffiles: edits survive upgrades
#   /usr/share/doc/conduit/README.md
# The maintainer scripts (packaging/debian/) create the user and enable the unit.
#
# Only the files below are installed: no test, benchmark or library goes into the package.

# `install` and cpack do not build first: scripts/package builds, and the tests package the
# tree they just tested without recompiling it.
set(CMAKE_SKIP_INSTALL_ALL_DEPENDENCY ON)

set(CONDUIT_PACKAGING_DIR ${PROJECT_SOURCE_DIR}/packaging)

install(TARGETS conduit RUNTIME DESTINATION bin)
install(FILES ${PROJECT_SOURCE_DIR}/systemd/conduit.service DESTINATION /lib/systemd/system)
install(FILES ${PROJECT_SOURCE_DIR}/systemd/conduit.sysusers
        DESTINATION lib/sysusers.d RENAME conduit.conf)
install(FILES ${CONDUIT_PACKAGING_DIR}/conduit.yaml ${CONDUIT_PACKAGING_DIR}/rules.yaml
        DESTINATION /etc/conduit)
install(FILES ${PROJECT_SOURCE_DIR}/README.md DESTINATION share/doc/conduit)

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME conduit)
set(CPACK_PACKAGE_VENDOR "Conduit")
set(CPACK_PACKAGE_CONTACT "Conduit maintainers <conduit@localhost>")
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "DICOM edge router: receive, spool durably, route, forward")
set(CPACK_PACKAGE_DESCRIPTION
    "Conduit receives studies from modalities and PACS over DICOM (C-STORE), stores every\n\
instance durably before acknowledging it, routes each one by rules and delivers it to\n\
PACS (DIMSE), DICOMweb (STOW-RS), S3 or folders, retrying until every destination has\n\
confirmed it. Runs as the hardened systemd service conduit.service.")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_STRIP_FILES ON)
set(CPACK_PACKAGE_DIRECTORY ${PROJECT_BINARY_DIR})

set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_RELEASE 1)
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
# Library dependencies from the binary's ELF (dpkg-shlibdeps, package dpkg-dev).
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_COMPRESSION_TYPE xz)
# Maintainer scripts mode 0755 and the files under /etc listed as conffiles.
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    ${CONDUIT_PACKAGING_DIR}/debian/conffiles
    ${CONDUIT_PACKAGING_DIR}/debian/postinst
    ${CONDUIT_PACKAGING_DIR}/debian/prerm
    ${CONDUIT_PACKAGING_DIR}/debian/postrm)

include(CPack)
